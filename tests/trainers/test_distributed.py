"""`newsdesk train --nproc N`: one run per job, written by rank 0; losses averaged over the
processes; a dead rank fails the run instead of hanging; resume works under DDP. Real
processes (gloo on CPU), real signals, a real SQLite store, a real THUCNews slice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    PROGRESS_TIMEOUT_S,
    newsdesk_command,
    run_ok,
    run_refused,
    write_slice,
)

pytestmark = pytest.mark.slow

# Dropout off: then a 2-process job with batch 32 per process computes exactly the averaged
# gradient of one process with batch 64 on the same examples (DistributedSampler's shards of
# the same shuffled order), and their losses can be compared step by step.
# No dropout of either kind: the DDP and single-process losses are compared exactly.
COMMON = ["--set", "model.num_filters=16", "--set", "model.dropout=0"]
COMMON += ["--set", "model.branch_dropout=0", "--quiet"]


@pytest.fixture(scope="module")
def slice_1280(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp-data")
    return write_slice(thucnews_dir, root / "slice", {"train": 1280, "dev": 200, "test": 200})


def _command(data: Path, uri: str, cache: Path, *extra: str) -> list[str]:
    return newsdesk_command(
        "train",
        "--model",
        "textcnn",
        "--data",
        str(data),
        "--tracking-uri",
        uri,
        "--experiment",
        "ddp",
        "--cache-dir",
        str(cache),
        *COMMON,
        *extra,
    )


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("ddp")
    return client.search_runs([exp.experiment_id]) if exp else []


def _history(uri: str, run_id: str, key: str = "train/loss") -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=uri)
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_two_processes_make_one_run_with_averaged_losses(slice_1280, store_uri, tmp_path):
    cache = tmp_path / "cache"
    run_ok(
        _command(
            slice_1280,
            store_uri,
            cache,
            "--nproc",
            "2",
            "--epochs",
            "2",
            "--set",
            "train.batch_size=32",
            "--set",
            "train.eval_every=10",
        ),
    )
    (run,) = _runs(store_uri)
    assert run.info.status == "FINISHED"
    assert run.data.params["distributed.world_size"] == "2"
    assert run.data.params["distributed.backend"] == "gloo"
    assert run.data.params["train.batch_size"] == "32"
    assert run.data.params["distributed.global_batch_size"] == "64"
    # 1,280 headlines, 640 per process, 32 per step: 20 steps an epoch, each step once.
    steps = [s for s, _ in _history(store_uri, run.info.run_id)]
    assert steps == list(range(1, 41))
    val_steps = [s for s, _ in _history(store_uri, run.info.run_id, "val/loss")]
    assert val_steps == [10, 20, 30, 40]
    assert "test/acc" in run.data.metrics
    assert (
        len(MlflowClient(tracking_uri=store_uri).search_logged_models([run.info.experiment_id]))
        == 1
    )

    # The same examples in one process with a batch of 64: the logged loss is the average
    # of the two processes' losses, so the curves agree step by step.
    run_ok(
        _command(
            slice_1280,
            store_uri,
            cache,
            "--epochs",
            "2",
            "--set",
            "train.batch_size=64",
            "--set",
            "train.eval_every=10",
        ),
    )
    single = next(r for r in _runs(store_uri) if r.info.run_id != run.info.run_id)
    ddp_loss = [v for _, v in _history(store_uri, run.info.run_id)]
    single_loss = [v for _, v in _history(store_uri, single.info.run_id)]
    assert ddp_loss[0] == pytest.approx(single_loss[0], rel=1e-5)
    assert ddp_loss[:10] == pytest.approx(single_loss[:10], rel=1e-3)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _rank_pid(launcher: int, rank: int) -> int:
    for pid in _children(launcher):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no rank {rank} among the children of {launcher}")


def _wait_for_steps(
    uri: str, proc: subprocess.Popen, n: int, timeout: float = PROGRESS_TIMEOUT_S
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "training never reached the step to signal"
        runs = _runs(uri)
        if runs and len(_history(uri, runs[0].info.run_id)) >= n:
            return runs[0].info.run_id
        time.sleep(0.1)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        if stat and stat.split(")")[-1].split()[0] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("rank", [1, 0])
def test_a_killed_rank_fails_the_run_within_the_timeout(slice_1280, store_uri, tmp_path, rank):
    command = _command(
        slice_1280,
        store_uri,
        tmp_path / "cache",
        "--nproc",
        "2",
        "--epochs",
        "50",
        "--set",
        "train.batch_size=16",
        "--dist-timeout",
        "60",
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = _wait_for_steps(store_uri, proc, 5)
    workers = _children(proc.pid)
    os.kill(_rank_pid(proc.pid, rank), signal.SIGKILL)
    started = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 90  # the 60 s timeout plus shutdown, never a hang
    assert proc.returncode == 137, err[-3000:]
    assert f"rank {rank} of 2 was killed by SIGKILL" in err
    assert "Traceback" not in err
    assert _alive(workers) == []
    run = MlflowClient(tracking_uri=store_uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert "newsdesk.failure_reason" in run.data.tags, err[-3000:]
    reason = run.data.tags["newsdesk.failure_reason"]
    assert ("another process" in reason) if rank == 1 else ("rank 0 of 2" in reason)


def test_sigterm_then_resume_with_the_same_nproc_finishes_every_step_once(
    slice_1280, store_uri, tmp_path
):
    cache = tmp_path / "cache"
    extra = [
        "--nproc",
        "2",
        "--epochs",
        "3",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.checkpoint_every=20",
        "--set",
        "train.eval_every=20",
    ]
    proc = subprocess.Popen(
        _command(slice_1280, store_uri, cache, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = _wait_for_steps(store_uri, proc, 50)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    client = MlflowClient(tracking_uri=store_uri)
    assert client.get_run(run_id).info.status == "KILLED"

    run_refused(
        newsdesk_command(
            "resume", run_id, "--tracking-uri", store_uri, "--cache-dir", str(cache), "--quiet"
        ),
        "resume it with --nproc 2",
    )

    run_ok(
        newsdesk_command(
            "resume",
            run_id,
            "--nproc",
            "2",
            "--tracking-uri",
            store_uri,
            "--cache-dir",
            str(cache),
            "--quiet",
        ),
    )
    assert client.get_run(run_id).info.status == "FINISHED"
    counts = Counter(s for s, _ in _history(store_uri, run_id))
    assert sorted(counts) == list(range(1, 121))  # 3 epochs of 640 / 16 = 40 steps
    assert set(counts.values()) == {1}
