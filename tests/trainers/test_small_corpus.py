"""Default settings on a 1,000-line corpus: every neural model ends within 3 points of the
linear baseline trained on the same split (issue 15). The slice is the benchmark's: the
first 1,000 training lines (the file is shuffled), the first 1,000 dev lines and every 5th
test line (the file is sorted by topic), 2,000 lines of all ten topics."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker import schema
from trainers.cli import main

MARGIN = 0.03
WITH_VECTORS = ("textcnn", "lstm")  # as `make bench`: FastText learns its table from scratch


def bench_slice(source: Path, target: Path, train_lines: int) -> Path:
    target.mkdir(parents=True)
    (target / "class.txt").write_bytes((source / "class.txt").read_bytes())
    picks = {"train": (train_lines, 1), "dev": (1000, 1), "test": (2000, 5)}
    for split, (count, every) in picks.items():
        lines = (source / f"{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        (target / f"{split}.txt").write_text("".join(lines[::every][:count]), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def small_corpus_runs(thucnews_dir, tmp_path_factory) -> dict:
    folder = bench_slice(thucnews_dir, tmp_path_factory.mktemp("s") / "1k", 1000)
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    vectors = thucnews_dir / "char_embeddings_200d.npz"
    for model in ("linear", "fasttext", "textcnn", "lstm"):
        argv = ["train", "--model", model, "--data", str(folder), "--tracking-uri", store]
        argv += ["--experiment", "small", "--quiet", "--no-system-metrics"]
        if model in WITH_VECTORS:
            argv += ["--embeddings", str(vectors)]
        assert main(argv) == 0, model
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("small").experiment_id])
    assert {int(r.data.params["data.train_size"]) for r in runs} == {1000}
    return {"client": client, "runs": {r.data.tags[schema.MODEL_TAG]: r for r in runs}}


@pytest.fixture(scope="module")
def small_corpus_accuracy(small_corpus_runs) -> dict[str, float]:
    return {m: r.data.metrics[schema.TEST_ACC] for m, r in small_corpus_runs["runs"].items()}


@pytest.mark.parametrize("model", ["fasttext", "textcnn", "lstm"])
def test_each_model_stops_a_little_past_its_best(small_corpus_runs, model):
    """At the defaults a 1,000-line corpus has a budget of about 1,000 steps (125 epochs);
    early stopping ends it a few evaluations after its best (issue 38, item 1)."""
    run = small_corpus_runs["runs"][model]
    history = small_corpus_runs["client"].get_metric_history(run.info.run_id, schema.TRAIN_LOSS)
    steps = max(m.step for m in history)
    params = run.data.params
    per_epoch = -(-int(params["data.train_size"]) // int(params["train.batch_size"]))
    budget = int(params["train.epochs"]) * per_epoch
    best = int(run.data.metrics[schema.BEST_AT_STEP])
    patience, every = int(params["train.patience"]), int(params["train.eval_every"])
    assert every <= per_epoch  # evaluated at least once an epoch
    assert steps < budget / 2, f"{model}: {steps} of {budget} steps"
    assert best < steps <= best + patience + every, (model, best, steps)


@pytest.mark.parametrize(
    "model",
    ["fasttext", "textcnn", "lstm"],
)
def test_each_model_ends_within_3_points_of_the_linear_model_on_1000_lines(
    small_corpus_accuracy, model
):
    linear = small_corpus_accuracy["linear"]
    assert linear > 0.7, f"the linear bar itself trained ({linear:.2%})"
    assert small_corpus_accuracy[model] >= linear - MARGIN, (
        f"{model} {small_corpus_accuracy[model]:.2%} against linear {linear:.2%}"
    )
