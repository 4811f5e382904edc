"""A user's own DDP loop under `torchrun` (examples/ddp_loop.py, the README's example):
`rank_zero_logger` makes one run for the job, with every step once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_ok
from tracker.logger.distributed import NullLogger, process_rank, rank_zero_logger

ROOT = Path(__file__).parents[2]


def test_torchrun_with_two_processes_makes_one_run(thucnews_dir, store_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    run_ok(
        [
            torchrun,
            "--standalone",
            "--nproc-per-node",
            "2",
            str(ROOT / "examples/ddp_loop.py"),
            str(thucnews_dir),
            "--experiment",
            "user-ddp",
        ],
    )
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("user-ddp").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["world_size"] == "2"
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss"))
    assert steps == list(range(1, 33))  # 1,024 lines, 512 per rank, 32 per batch, 2 epochs


@pytest.mark.parametrize(("env", "rank"), [({}, 0), ({"RANK": "3"}, 3), ({"RANK": "0"}, 0)])
def test_the_rank_comes_from_the_launcher_s_environment(monkeypatch, store_uri, env, rank):
    monkeypatch.delenv("RANK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert process_rank() == rank
    logger = rank_zero_logger("ranks", tracking_uri=store_uri)
    try:
        assert isinstance(logger, NullLogger) == (rank != 0)
    finally:
        logger.close()
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name("ranks")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    assert len(runs) == (1 if rank == 0 else 0)
