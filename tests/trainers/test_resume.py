"""Fault 3: the training process dies (SIGKILL) or is stopped (SIGINT/SIGTERM) mid-epoch, and
`newsdesk resume RUN_ID` continues it into the same run with no gap and no duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import PROGRESS_TIMEOUT_S, newsdesk_command
from tests.legacy_spool import Batch, SpoolContent, write_spool
from tracker.store.location import default_spool_dir, resolve_store
from trainers.cli import main

EPOCHS = 2
STEPS = EPOCHS * 125  # 2,000 headlines in batches of 16
# Stored train/loss steps before the signal: early in epoch 2 of 2. The periodic
# checkpoint (every 100 steps) is then behind the store, so a resume recomputes steps whose
# points the store already has, and must not log them again.
KILL_AFTER = 130


@pytest.fixture(scope="module")
def slice_2000(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_slice

    root = tmp_path_factory.mktemp("resume-data")
    return write_slice(thucnews_dir, root / "slice", {"train": 2000, "dev": 200, "test": 200})


def _train_command(data: Path, uri: str, cache: Path) -> list[str]:
    return newsdesk_command(
        "train",
        "--model",
        "lstm",
        "--data",
        str(data),
        "--tracking-uri",
        uri,
        "--experiment",
        "resume",
        "--epochs",
        str(EPOCHS),
        "--quiet",
        "--cache-dir",
        str(cache),
        "--set",
        "model.hidden_size=32",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.eval_every=50",
        "--set",
        "train.checkpoint_every=100",
    )


def _history(uri: str, run_id: str, key: str = "train/loss") -> list[tuple[int, float]]:
    points = MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in points)


def _only_run(uri: str):
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    return run


def _wait_for_status(uri: str, status: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while (run := _only_run(uri)).info.status != status and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.info.status == status
    return run


def _start_and_signal(
    command: list[str], uri: str, signum: int, *, env: dict | None = None, before=None
) -> tuple[str, int, int]:
    """Start a training, send `signum` once KILL_AFTER steps are stored (after calling
    `before()`, if given); (run id, stored, rc, stderr)."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    run_id, stored = None, 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            run_id = _only_run(uri).info.run_id
            stored = len(_history(uri, run_id))
        except Exception:  # noqa: BLE001 - the run or the experiment does not exist yet
            continue
        if stored >= KILL_AFTER:
            break
    assert proc.poll() is None, f"training ended before the signal: {proc.stderr.read()[-2000:]}"
    assert stored >= KILL_AFTER, f"only {stored} steps stored after {PROGRESS_TIMEOUT_S} s"
    if before is not None:
        before()
        assert proc.poll() is None, f"training ended too soon: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return run_id, stored, proc.returncode, err


def _resume(run_id: str, uri: str, cache: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        newsdesk_command(
            "resume", run_id, "--tracking-uri", uri, "--quiet", "--cache-dir", str(cache)
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.server
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(
    pg_server, slice_2000, store_uri, tmp_path
):
    """Against the PostgreSQL-backed server; an uninterrupted run on SQLite is the reference.

    Model, optimizer, scheduler, step, RNG, data order and early-stopping state all come back:
    the resumed `train/loss` curve equals the reference at every step, bit for bit.
    """
    cache = tmp_path / "cache"
    reference = subprocess.Popen(
        _train_command(slice_2000, store_uri, cache),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id, stored_at_kill, code, _ = _start_and_signal(
        _train_command(slice_2000, pg_server.url, cache), pg_server.url, signal.SIGKILL
    )
    assert code == -signal.SIGKILL
    # Its shipper outlives it, ships what its log holds and ends the run, saying why.
    died = _wait_for_status(pg_server.url, "FAILED")
    assert "ended without closing its logger" in died.data.tags["newsdesk.process_died"]
    checkpoint = _only_run(pg_server.url).data.tags["newsdesk.resume_checkpoint"]
    checkpoint_step = torch.load(checkpoint, weights_only=True)["global_step"]
    done = _resume(run_id, pg_server.url, cache)
    assert f"at step {checkpoint_step}" in done.stderr
    # Saved only after a flush: the store is never behind the checkpoint (no gap possible).
    stored_at_resume = int(done.stderr.split("train/loss up to step ")[1].split()[0])
    assert stored_at_resume >= max(checkpoint_step, stored_at_kill)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-2000:]

    resumed = _history(pg_server.url, run_id)
    steps = Counter(step for step, _ in resumed)
    print(
        f"SIGKILL after step {stored_at_resume} was stored, checkpoint at {checkpoint_step}: "
        f"handed over {STEPS} train/loss points, stored {len(resumed)}, "
        f"duplicates {sum(n - 1 for n in steps.values())}"
    )
    assert stored_at_kill >= KILL_AFTER
    assert sorted(steps) == list(range(1, STEPS + 1)) and max(steps.values()) == 1
    assert resumed == _history(store_uri, _only_run(store_uri).info.run_id)
    for key in ("val/loss", "val/acc"):
        val_steps = [s for s, _ in _history(pg_server.url, run_id, key)]
        assert val_steps == sorted(set(range(50, STEPS + 1, 50)) | {STEPS})
    final = _only_run(pg_server.url)
    assert final.info.status == "FINISHED"
    assert final.data.metrics["test/acc"] == _only_run(store_uri).data.metrics["test/acc"]
    assert not Path(checkpoint).parent.exists()  # a finished run keeps no resume state


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_flush_checkpoint_and_end_killed(
    signum, slice_2000, store_uri, tmp_path
):
    cache = tmp_path / "cache"
    run_id, _, code, err = _start_and_signal(
        _train_command(slice_2000, store_uri, cache), store_uri, signum
    )
    assert code == 128 + signum
    assert f"newsdesk resume {run_id}" in err and "Traceback" not in err
    run = _only_run(store_uri)
    assert run.info.status == "KILLED"
    state = torch.load(run.data.tags["newsdesk.resume_checkpoint"], weights_only=True)
    stored = _history(store_uri, run_id)
    # Flushed and checkpointed at the same step boundary: the store has exactly the steps the
    # checkpoint has done.
    assert [s for s, _ in stored] == list(range(1, state["global_step"] + 1))
    # As if the store had refused the last 20 steps and the logger had spooled them: resume
    # ships them first and does not log those steps again, so a later sync adds nothing.
    done = state["global_step"]
    spooled = Batch(metrics=[("train/loss", 9.0, 1, s) for s in range(done + 1, done + 21)])
    spool_dir = default_spool_dir(resolve_store(store_uri))
    write_spool(spool_dir, SpoolContent(store_uri, run_id, spooled, "KILLED", 1))
    resumed = _resume(run_id, store_uri, cache)
    assert "shipped 20 spooled metric points" in resumed.stderr
    assert main(["sync", "--tracking-uri", store_uri]) == 0
    steps = [s for s, _ in _history(store_uri, run_id)]
    print(
        f"{signal.Signals(signum).name}: stopped at step {state['global_step']}; after resume "
        f"stored {len(steps)} of {STEPS}, duplicates {len(steps) - len(set(steps))}"
    )
    assert steps == list(range(1, STEPS + 1))
    assert _only_run(store_uri).info.status == "FINISHED"


def test_artifact_store_failing_after_training_then_resume_finishes_without_retraining(
    thucnews_slice, store_uri, tmp_path, capsys
):
    """The artifact folder breaks after training (a file where the experiment's folder should
    be): the run ends FAILED with every metric stored and its final checkpoint kept; once the
    folder is fixed, `newsdesk resume` logs the test results, plots and model, and finishes."""
    from trainers.cli import main

    artifacts = Path(store_uri.removeprefix("sqlite:///")).parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "resume").write_text("not a folder")
    cache = tmp_path / "cache"
    train_args = _train_command(thucnews_slice, store_uri, cache)[1:]
    train_args += ["--max-steps", "30", "--set", "train.checkpoint_every=10"]
    assert main(train_args) == 1
    err = capsys.readouterr().err
    run = _only_run(store_uri)
    assert run.info.status == "FAILED"
    assert f"newsdesk resume {run.info.run_id}" in err and "Traceback" not in err
    assert [s for s, _ in _history(store_uri, run.info.run_id)] == list(range(1, 31))
    state = torch.load(run.data.tags["newsdesk.resume_checkpoint"], weights_only=True)
    assert state["global_step"] == 30  # the checkpoint taken when training was done

    (artifacts / "resume").unlink()
    assert main(["resume", run.info.run_id, "--tracking-uri", store_uri, "--quiet"]) == 0
    assert "at step 30" in capsys.readouterr().err  # nothing was retrained
    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED"
    assert "newsdesk.resume_checkpoint" not in run.data.tags  # its file is gone
    assert [s for s, _ in _history(store_uri, run.info.run_id)] == list(range(1, 31))
    assert len(client.get_metric_history(run.info.run_id, "test/acc")) == 1
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert logged == {"plots/confusion.png", "plots/curves.png"}
    assert run.outputs.model_outputs  # the model was logged on resume


def test_killed_before_the_first_periodic_checkpoint_resumes_from_step_0(
    slice_2000, store_uri, tmp_path
):
    """Once `newsdesk resume` said the checkpoint did not exist; now the run restarts from
    step 0 into the same run, and the steps the store already has are not stored again."""
    command = _train_command(slice_2000, store_uri, tmp_path / "cache")
    command[command.index("train.checkpoint_every=100")] = "train.checkpoint_interval_s=3600"
    run_id, stored, code, _ = _start_and_signal(command, store_uri, signal.SIGKILL)
    assert code == -signal.SIGKILL and stored >= KILL_AFTER
    state = torch.load(_only_run(store_uri).data.tags["newsdesk.resume_checkpoint"])
    assert state["global_step"] == 0  # the only checkpoint: the one made before step 1
    done = _resume(run_id, store_uri, tmp_path / "cache")
    assert "at step 0" in done.stderr
    run = _only_run(store_uri)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    steps = Counter(step for step, _ in _history(store_uri, run_id))
    print(f"killed at {stored} stored steps; after resume: {len(steps)} steps stored")
    assert sorted(steps) == list(range(1, STEPS + 1)) and max(steps.values()) == 1


@pytest.mark.server
def test_store_down_for_the_second_half_then_resume_of_a_sigkilled_training_then_sync_twice(
    pg_server, slice_2000, tmp_path, capsys
):
    """The server dies once KILL_AFTER steps are stored; the training goes on for 3 s, its
    points going only to its write-ahead log, and is then SIGKILLed. With the server back,
    `newsdesk resume` lets the log be shipped before it decides where to continue: every
    step once, FINISHED, and two later syncs add nothing."""
    cache = tmp_path / "cache"
    # MLflow's own HTTP retries would wait minutes per request; the shipper retries instead.
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"

    def store_goes_down() -> None:
        pg_server.kill()
        time.sleep(3.0)

    command = _train_command(slice_2000, pg_server.url, cache)
    run_id, stored_before, code, _ = _start_and_signal(
        command, pg_server.url, signal.SIGKILL, env=env, before=store_goes_down
    )
    assert code == -signal.SIGKILL and stored_before >= KILL_AFTER
    pg_server.start()
    done = _resume(run_id, pg_server.url, cache)
    resumed_from = int(done.stderr.split("train/loss up to step ")[1].split()[0])
    for _ in range(2):
        assert main(["sync", "--tracking-uri", pg_server.url]) == 0
        assert "nothing to sync" in capsys.readouterr().out
    steps = Counter(step for step, _ in _history(pg_server.url, run_id))
    print(
        f"server down after {stored_before} stored steps, training SIGKILLed 3 s later; the "
        f"store had {resumed_from} steps at resume; after resume and two syncs: "
        f"{len(steps)} steps, duplicates {sum(n - 1 for n in steps.values())}"
    )
    assert resumed_from > stored_before, "the steps logged while the store was down were lost"
    assert sorted(steps) == list(range(1, STEPS + 1)) and max(steps.values()) == 1
    assert _only_run(pg_server.url).info.status == "FINISHED"
