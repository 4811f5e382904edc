"""TrainingLogger against a real `mlflow server` process on 127.0.0.1 (SQLite backend)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, WriterConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: Path, artifacts: Path, port: int) -> subprocess.Popen:
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
            "--artifacts-destination",
            str(artifacts),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError("mlflow server exited at start") from None
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("mlflow server did not start in 90 s")


@pytest.fixture
def server(tmp_path, _template_db, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "server.db"
    shutil.copy(_template_db, db)
    port = _free_port()
    state = {
        "db": db,
        "artifacts": tmp_path / "artifacts",
        "port": port,
        "uri": f"http://127.0.0.1:{port}",
    }
    state["proc"] = _start(db, state["artifacts"], port)
    yield state
    if state["proc"].poll() is None:
        os.killpg(state["proc"].pid, signal.SIGKILL)
        state["proc"].wait()


def test_http_tracking_server_works_like_sqlite(server, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with TrainingLogger(
        "remote",
        run_name="r",
        tracking_uri=server["uri"],
        params={"model": {"hidden_size": 8}},
        writer_config=WriterConfig(flush_interval_s=0.05),
    ) as log:
        for step in range(1, 1501):
            log.log_metrics({"train/loss": 1.0 / step, "lr": 0.1}, step=step)
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        log.log_figure(fig, "plots/curve.png")
        plt.close(fig)
    client = MlflowClient(tracking_uri=server["uri"])
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model.hidden_size": "8"}
    steps = [m.step for m in client.get_metric_history(log.run_id, "train/loss")]
    assert sorted(steps) == list(range(1, 1501))
    assert [a.path for a in client.list_artifacts(log.run_id, "plots")] == ["plots/curve.png"]


def test_server_killed_and_restarted_loses_nothing(server):
    """SIGKILL the server mid-run, restart it: every point is stored exactly once."""
    log = TrainingLogger(
        "remote",
        tracking_uri=server["uri"],
        writer_config=WriterConfig(
            flush_interval_s=0.05, backoff_initial_s=0.2, close_timeout_s=120
        ),
    )
    for step in range(1, 501):
        log.log_metrics({"train/loss": float(step)}, step=step)
    assert log.flush(timeout=30)
    os.killpg(server["proc"].pid, signal.SIGKILL)
    server["proc"].wait()
    started = time.monotonic()
    for step in range(501, 1001):
        log.log_metrics({"train/loss": float(step)}, step=step)
    assert time.monotonic() - started < 2, "logging must not block while the server is down"
    time.sleep(2)
    server["proc"] = _start(server["db"], server["artifacts"], server["port"])
    log.close()
    assert log.spool_path is None
    history = MlflowClient(tracking_uri=server["uri"]).get_metric_history(log.run_id, "train/loss")
    steps = sorted(m.step for m in history)
    print(f"handed over 1000, stored {len(steps)}, duplicates {len(steps) - len(set(steps))}")
    assert steps == list(range(1, 1001))
