"""Each validation leaves a record for the dashboard: the dev confusion matrix and the most
confident mistakes, at the step of its `val/*` points."""

from __future__ import annotations

import numpy as np
import pytest

from tracker import MemoryLogger, schema
from trainers.config import TrainConfig
from trainers.data import DataConfig, prepare_data
from trainers.evaluate import Evaluation, confusion
from trainers.evaluation_log import evaluation_record
from trainers.models.registry import make_config
from trainers.run import run_training


def test_the_record_counts_the_confusion_and_keeps_the_most_confident_mistakes():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 2, 0, 1])
    probabilities = np.array([0.9, 0.6, 0.8, 0.95, 0.7, 0.5, 0.99])
    ev = Evaluation(loss=0.5, acc=3 / 7, predictions=predictions, labels=labels,
                    probabilities=probabilities)  # fmt: skip
    texts = [f"headline {i}" for i in range(7)]
    record = evaluation_record(12, ev, texts, ["体育", "财经", "房产"], kept=3)
    assert record["step"] == 12 and record["examples"] == 7
    assert record["confusion"] == confusion(ev, 3).tolist()
    assert [m["index"] for m in record["misclassified"]] == [6, 3, 1]
    assert record["misclassified"][0] == {
        "index": 6, "text": "headline 6", "true": 2, "predicted": 1, "probability": 0.99
    }  # fmt: skip


@pytest.fixture
def tiny(thucnews_slice, tmp_path):
    return prepare_data(DataConfig(data=thucnews_slice, cache_dir=tmp_path / "cache"))


def test_a_training_logs_one_record_per_validation(tiny):
    log = MemoryLogger()
    run_training(
        "fasttext",
        make_config("fasttext", {"buckets": 1000}),
        DataConfig(),
        TrainConfig(epochs=2, batch_size=256, eval_every=2, seed=3),
        tiny,
        log,
        progress=False,
        log_model=False,
    )
    val_steps = [step for step, m in log.records if schema.VAL_ACC in m]
    records = {
        path: record
        for path, record in log.artifacts.items()
        if path.startswith(schema.EVALUATIONS_DIR + "/")
    }
    assert [r["step"] for _, r in sorted(records.items())] == val_steps
    accs = [m[schema.VAL_ACC] for _, m in log.records if schema.VAL_ACC in m]
    dev = tiny.corpus.dev
    for (_, record), acc in zip(sorted(records.items()), accs, strict=True):
        matrix = np.array(record["confusion"])
        assert matrix.sum() == len(dev)
        assert np.trace(matrix) / matrix.sum() == pytest.approx(acc)
        assert record["labels"] == tiny.corpus.label_names
        for mistake in record["misclassified"]:
            assert dev.texts[mistake["index"]] == mistake["text"]
            assert dev.labels[mistake["index"]] == mistake["true"] != mistake["predicted"]
