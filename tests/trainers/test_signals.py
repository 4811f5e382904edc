"""SIGTERM wherever it lands in a command ends it in one line with exit 143, and an open run
ends KILLED: during data preparation (no run yet), and during test evaluation after training."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from tests.conftest import PROGRESS_TIMEOUT_S, newsdesk_command, write_slice


def _wait_for(condition, proc: subprocess.Popen, timeout: float = PROGRESS_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the phase to signal never came"
        time.sleep(0.05)


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def _assert_one_line_143(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = err.strip().splitlines()
    assert lines[-1].endswith("stopped by SIGTERM"), err[-2000:]
    assert "Traceback" not in err
    return err


def test_sigterm_during_data_preparation(thucnews_dir, store_uri, tmp_path):
    """Tokenizing 65,000 headlines with jieba takes seconds: the signal lands once the train
    split is cached and dev and test are still being tokenized."""
    cache = tmp_path / "cache"
    args = ["train", "--model", "fasttext", "--data", str(thucnews_dir), "--tokenizer", "word"]
    command = newsdesk_command(
        *args, "--tracking-uri", store_uri, "--cache-dir", str(cache), "--quiet"
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(cache.glob("tokens-*.npz")), proc)
    proc.send_signal(signal.SIGTERM)
    err = _assert_one_line_143(proc)
    assert _runs(store_uri) == []  # stopped before any run was made
    assert "KILLED" not in err  # there was no run to end, and nothing says otherwise


def test_sigterm_during_test_evaluation_ends_the_run_killed(thucnews_dir, store_uri, tmp_path):
    """Two training steps, then 10,000 test headlines through an LSTM: the signal lands once
    the final resume checkpoint (step 2) is written, that is during test evaluation (or, on a
    fast machine, the artifact upload after it: outside the loop either way)."""
    data = write_slice(thucnews_dir, tmp_path / "slice", {"train": 256, "dev": 64, "test": 10_000})
    command = newsdesk_command(
        "train", "--model", "lstm", "--data", str(data), "--tracking-uri", store_uri,
        "--max-steps", "2", "--quiet", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def final_checkpoint_written() -> bool:
        runs = _runs(store_uri)
        tag = runs[0].data.tags.get("newsdesk.resume_checkpoint") if runs else None
        try:
            return bool(tag) and torch.load(tag, weights_only=True)["global_step"] == 2
        except (OSError, RuntimeError, EOFError):
            return False

    _wait_for(final_checkpoint_written, proc)
    proc.send_signal(signal.SIGTERM)
    err = _assert_one_line_143(proc)
    (run,) = _runs(store_uri)
    assert run.info.status == "KILLED"
    assert f"run {run.info.run_id} ended KILLED" in err
    assert Path(run.data.tags["newsdesk.resume_checkpoint"]).is_file()  # resumable
