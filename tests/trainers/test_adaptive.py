"""Defaults that adapt to the corpus: the schedule from its size, the sequence length from its
texts, both logged as the run's params."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.conftest import write_slice
from trainers.cli import main
from trainers.config import DataConfig, resolve_schedule, train_config_for
from trainers.data.pipeline import prepare_data


def test_a_small_corpus_gets_enough_steps_and_a_large_one_keeps_its_epochs():
    small = resolve_schedule(train_config_for("fasttext"), 1000)  # 8 steps per epoch
    assert small.epochs == 125 and small.epochs * 8 >= 1000
    # Patience is a few evaluations, not a share of the budget: a small corpus, which gets
    # many epochs, stops a little past its best.
    assert small.eval_every == 8 and small.patience == 32  # an evaluation an epoch
    large = resolve_schedule(train_config_for("fasttext"), 45_000)  # 352 steps per epoch
    assert large.epochs == 5 and large.eval_every == 88 and large.patience == 352
    lstm = resolve_schedule(train_config_for("lstm"), 45_000)
    # 3 epochs of 352 steps pass its 700; 7 evaluations (few passes over the dev split).
    assert lstm.epochs == 3 and lstm.eval_every == 150 and lstm.patience == 450
    # TextCNN: three evaluations without gain end it; here, epochs.
    textcnn = resolve_schedule(train_config_for("textcnn"), 1000)  # 125 epochs of 8 steps
    assert textcnn.eval_every == 8 and textcnn.patience == 24
    # What the user sets stays: epochs given are the budget; eval_every and patience kept.
    mine = resolve_schedule(train_config_for("fasttext", {"epochs": 2, "eval_every": 3}), 1000)
    assert (mine.epochs, mine.eval_every) == (2, 3)
    assert resolve_schedule(mine, 1000) == mine  # resolving twice changes nothing (resume)


def _long_texts(source: Path, target: Path) -> Path:
    """A long-text corpus from the headlines: each text joins 4 to 40 headlines of one topic
    (median about 400 characters, like reviews or article leads)."""
    target.mkdir(parents=True)
    (target / "class.txt").write_bytes((source / "class.txt").read_bytes())
    for split, n in {"train": 200, "dev": 40, "test": 40}.items():
        by_label: dict[str, list[str]] = {}
        for line in (source / "train.txt").read_text(encoding="utf-8").splitlines()[:20_000]:
            text, label = line.rsplit("\t", 1)
            by_label.setdefault(label, []).append(text)
        rows = []
        for i in range(n):
            label = sorted(by_label)[i % len(by_label)]
            count = 4 + (i * 7) % 37
            start = (i * 13) % 400
            rows.append("，".join(by_label[label][start : start + count]) + f"\t{label}")
        (target / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


def test_the_sequence_length_follows_the_texts_and_is_capped(thucnews_dir, tmp_path):
    headlines = write_slice(
        thucnews_dir, tmp_path / "heads", {"train": 2000, "dev": 50, "test": 50}
    )
    short = prepare_data(DataConfig(data=headlines, cache_dir=tmp_path / "cache"))
    assert 20 <= short.pad_size <= 32  # the 99th percentile of headline lengths
    assert short.splits["train"].ids.shape[1] == short.pad_size
    long = prepare_data(DataConfig(data=_long_texts(thucnews_dir, tmp_path / "long")))
    assert long.stats["data.train_tokens_p50"] > 150
    assert long.pad_size == 256  # capped: max_pad_size
    wider = DataConfig(data=tmp_path / "long", max_pad_size=1024, pad_percentile=50)
    assert prepare_data(wider).pad_size == round(long.stats["data.train_tokens_p50"] + 0.5)
    fixed = prepare_data(DataConfig(data=tmp_path / "long", pad_size=40))
    assert fixed.pad_size == 40 and fixed.splits["test"].ids.shape[1] == 40


def test_the_derived_values_are_logged_as_the_run_s_params(thucnews_slice, store_uri):
    args = ["train", "--model", "fasttext", "--data", str(thucnews_slice)]
    assert main([*args, "--tracking-uri", store_uri, "--max-steps", "12", "--quiet"]) == 0
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("newsdesk").experiment_id])
    params = run.data.params
    assert params["train.min_steps"] == "1000"
    assert params["train.epochs"] == "200"  # 640 lines: 5 steps per epoch, 1,000 steps
    assert params["train.eval_every"] == "5" and params["train.patience"] == "20"  # 4 evaluations
    # FastText's per-model defaults: the linear model's features (characters, their bigrams,
    # words), the sparse table at its own rate, the best checkpoint by validation accuracy.
    assert params["data.tokenizer"] == "ngrams" and params["train.sparse_lr"] == "0.002"
    assert (params["train.monitor"], params["train.mode"]) == ("val/acc", "max")
    assert 48 <= int(params["data.pad_size"]) <= 96  # about 2.5 tokens per character
    assert float(params["data.train_tokens_p99"]) <= int(params["data.pad_size"])
    val_steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert val_steps == [5, 10, 12]  # max_steps still ends it


def test_a_given_tokenizer_replaces_the_model_s_default(thucnews_slice, store_uri):
    args = ["train", "--model", "fasttext", "--data", str(thucnews_slice), "--tokenizer", "char"]
    assert main([*args, "--tracking-uri", store_uri, "--max-steps", "3", "--quiet"]) == 0
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("newsdesk").experiment_id])
    assert run.data.params["data.tokenizer"] == "char"
    assert int(run.data.params["data.pad_size"]) <= 32
