"""Fault 4: four trainings at once against one server, and four against the embedded SQLite."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command

STEPS = 60
TRAIN_KEYS = ("train/loss", "train/acc", "lr", "epoch")


def _launch(tracking_uri: str, data: Path, cache: Path, seed: int) -> subprocess.Popen:
    return subprocess.Popen(
        newsdesk_command(
            "train",
            "--model",
            "fasttext",
            "--data",
            str(data),
            "--tracking-uri",
            tracking_uri,
            "--experiment",
            "concurrent",
            "--max-steps",
            str(STEPS),
            "--seed",
            str(seed),
            "--quiet",
            "--cache-dir",
            str(cache),
            "--set",
            "model.buckets=2000",
            "--set",
            "train.batch_size=16",
            "--set",
            "train.eval_every=10",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _four_at_once(tracking_uri: str, data: Path, cache: Path, label: str) -> None:
    procs = [_launch(tracking_uri, data, cache, seed) for seed in range(1, 5)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("concurrent")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    handed = stored = duplicates = 0
    for run in runs:
        assert run.info.status == "FINISHED"
        for key in (*TRAIN_KEYS, "val/loss", "val/acc"):
            steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
            expected = (
                set(range(1, STEPS + 1)) if key in TRAIN_KEYS else set(range(10, STEPS + 1, 10))
            )
            handed += len(expected)
            stored += sum(steps.values())
            duplicates += sum(n - 1 for n in steps.values())
            assert set(steps) == expected, (key, sorted(set(steps) ^ expected))
        assert client.get_run(run.info.run_id).data.metrics["test/acc"] > 0
    print(f"{label}: 4 runs, handed over {handed}, stored {stored}, duplicates {duplicates}")
    assert stored == handed and duplicates == 0


@pytest.mark.server
def test_four_trainings_at_once_against_one_server(pg_server, thucnews_slice, tmp_path):
    _four_at_once(pg_server.url, thucnews_slice, tmp_path / "cache", "four against one server")


def test_four_trainings_at_once_against_sqlite(store_uri, thucnews_slice, tmp_path):
    """ "database is locked" between the four writers is retried, never lost."""
    _four_at_once(store_uri, thucnews_slice, tmp_path / "cache", "four against one SQLite file")
