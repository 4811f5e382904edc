"""`newsdesk train` end to end: main(argv) on a slice of THUCNews into a real SQLite store."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from trainers.cli import main
from trainers.data.pipeline import DataConfig, prepare_data


def _runs(store_uri: str, experiment: str = "newsdesk"):
    client = MlflowClient(tracking_uri=store_uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], order_by=["start_time ASC"])


def _args(folder, store_uri, *extra):
    return [
        "train",
        "--data",
        str(folder),
        "--tracking-uri",
        store_uri,
        "--quiet",
        "--cache-dir",
        str(folder.parent / "cache"),
        *extra,
    ]


def test_train_logs_every_step_metrics_artifacts_and_a_loadable_model(
    thucnews_slice, store_uri, capsys
):
    code = main(
        _args(
            thucnews_slice,
            store_uri,
            "--model",
            "textcnn",
            "--epochs",
            "2",
            "--set",
            "model.num_filters=16",
            "--set",
            "train.eval_every=4",
        )
    )
    assert code == 0
    out = capsys.readouterr().out
    client, runs = _runs(store_uri)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id in out and "newsdesk ui" in out
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == "textcnn"
    assert "newsdesk.resume_checkpoint" not in run.data.tags  # finished: its file is removed
    assert run.data.params["model.num_filters"] == "16"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(1, 11)), "one train/loss point per optimizer step (640/128 x 2)"
    val_steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert val_steps == [4, 8, 10]
    for key in ("test/acc", "test/macro_f1", "test/loss", "perf/samples_per_s"):
        assert key in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/confusion.png", "plots/curves.png"}
    assert client.list_artifacts(run.info.run_id, "metrics")[0].path == "metrics/test_report.json"

    mlflow.set_tracking_uri(store_uri)
    try:
        model_uri = f"runs:/{run.info.run_id}/model"
        logged = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id], output_format="list"
        )
        assert len(logged) == 1 and logged[0].source_run_id == run.info.run_id
        model = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}")
        headlines = ["央行宣布降准0.5个百分点", "湖人队击败勇士队", "新款游戏主机发布"]
        predictions = model.predict(pd.DataFrame({"text": headlines}))
    finally:
        mlflow.set_tracking_uri(None)
    assert model_uri
    # The bag's idf weights were fitted on the training texts and travel with the model.
    bag_weights = model.unwrap_python_model().predictor.model.bag.row_weights
    assert bag_weights[0] == 0 and bag_weights.max() > 2 and (bag_weights == 0).any()
    assert len(predictions) == 3
    names = (thucnews_slice / "class.txt").read_text(encoding="utf-8").split()
    assert set(predictions["label"]) <= set(names)
    assert predictions[[f"prob_{n}" for n in names]].sum(axis=1).round(4).eq(1).all()


def test_same_seed_gives_the_same_metrics(thucnews_slice, store_uri):
    for _ in range(2):
        assert (
            main(
                _args(
                    thucnews_slice,
                    store_uri,
                    "--model",
                    "lstm",
                    "--max-steps",
                    "4",
                    "--seed",
                    "7",
                    "--set",
                    "model.hidden_size=16",
                    "--set",
                    "train.eval_every=2",
                )
            )
            == 0
        )
    client, runs = _runs(store_uri)
    assert len(runs) == 2
    for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
        a, b = (
            [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, key)] for r in runs
        )
        assert a == b and len(a) > 0
    assert runs[0].data.metrics["test/acc"] == runs[1].data.metrics["test/acc"]


def test_all_trains_the_linear_baseline_and_the_three_neural_models(thucnews_slice, store_uri):
    assert (
        main(
            _args(
                thucnews_slice,
                store_uri,
                "--model",
                "all",
                "--max-steps",
                "2",
                "--set",
                "model.hidden_size=16",
                "--set",
                "model.num_filters=8",
                "--experiment",
                "three",
            )
        )
        == 0
    )
    _, runs = _runs(store_uri, "three")
    assert sorted(r.data.tags["model"] for r in runs) == ["fasttext", "linear", "lstm", "textcnn"]
    tokenizers = {r.data.tags["model"]: r.data.params["data.tokenizer"] for r in runs}
    assert tokenizers == {
        "linear": "char",
        "fasttext": "ngrams",
        "textcnn": "char+word",
        "lstm": "char+word",
    }
    # The bag's hash table is sized from this corpus: one bucket per distinct bigram of the
    # training texts, rounded up to a multiple of 10,000 (not the 200,000 of 45,000 lines).
    # FastText's tokens are n-grams already: it hashes no pairs and has no buckets.
    tokenizer = tokenizers["textcnn"]
    config = DataConfig(
        data=thucnews_slice, tokenizer=tokenizer, cache_dir=thucnews_slice.parent / "cache"
    )
    train = prepare_data(config)
    ids = train.splits["train"].ids.tolist()
    distinct = {(a, b) for row in ids for a, b in zip(row, row[1:], strict=False) if b}
    expected = str(-(-len(distinct) // 10_000) * 10_000)
    assert int(expected) < 200_000
    buckets = {
        r.data.tags["model"]: r.data.params.get(
            "model.buckets", r.data.params.get("model.bag_buckets")
        )
        for r in runs
    }
    assert buckets == {"linear": None, "fasttext": "0", "textcnn": expected, "lstm": expected}
    fasttext = next(r for r in runs if r.data.tags["model"] == "fasttext")
    assert fasttext.data.params["model.ngrams"] == "1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "model.nope=1"], "--set model.nope: unknown setting (settings of fasttext:"),
        (["--set", "train.lr=abc"], "--set train.lr: cannot read 'abc' as float"),
        (["--set", "lr=1"], "expected section.key=value"),
        (["--embeddings", "missing.npz"], "missing.npz: embeddings file does not exist"),
        (["--set", "train.lr=nan"], "train.lr must be a positive finite number"),
    ],
)
def test_bad_options_are_one_line_errors(thucnews_slice, store_uri, capsys, extra, message):
    assert main(_args(thucnews_slice, store_uri, "--model", "fasttext", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    client = MlflowClient(tracking_uri=store_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert not client.search_runs(experiments)  # refused before any run was made


@pytest.mark.parametrize("lr", ["1e9", "1e38"])
def test_a_diverging_training_ends_failed_with_its_reason_and_is_never_promoted(
    thucnews_slice, store_uri, capsys, lr
):
    """`train.lr=1e9` once ended FINISHED with train/loss 7.9e29, and could be promoted;
    `train.lr=1e38` overflowed Adam's step size with a raw RuntimeError and no reason, and was
    told to resume (which would diverge again)."""
    args = _args(thucnews_slice, store_uri, "--model", "textcnn", "--set", f"train.lr={lr}")
    assert main([*args, "--set", "model.num_filters=16", "--max-steps", "40"]) == 1
    err = capsys.readouterr().err
    assert "training stopped" in err and "lower train.lr" in err
    assert "resume" not in err and "Traceback" not in err
    client, [run] = _runs(store_uri)
    assert run.info.status == "FAILED"
    reason = run.data.tags["newsdesk.failure_reason"]
    assert any(s in reason for s in ("non-finite training loss", "times the first", "overflowed"))
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert history  # the points up to the divergence are stored, the last one included
    # Even ranked by a metric it has, the FAILED run is never a candidate.
    promote = ["promote", "--tracking-uri", store_uri, "--metric", "train/loss", "--mode", "min"]
    assert main(promote) == 2
    assert "no finished run" in capsys.readouterr().err
