"""`newsdesk server --local-postgres DIR` (what `make server` runs), as a user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command
from tracker import TrainingLogger
from tracker.server.mlflow_server import wait_healthy
from tracker.server.ports import free_port

pytestmark = pytest.mark.server


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _launch(folder: Path, port: int, *store: str, env: dict | None = None) -> subprocess.Popen:
    """`newsdesk server` on `port` with the store options `store`, output captured."""
    return subprocess.Popen(
        newsdesk_command(
            "server",
            *store,
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--port",
            str(port),
            "--workers",
            "1",
        ),
        cwd=folder,
        env=env,
        # As a terminal would start it: a shell's background job (`cmd &`, how CI is sometimes
        # launched) has SIGINT ignored, and an ignored signal stays ignored in its children.
        preexec_fn=_default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _serve(folder: Path, port: int) -> subprocess.Popen:
    proc = _launch(folder, port, "--local-postgres", str(folder / "postgres"))
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def folder():
    """As root the cluster runs as an unprivileged user, which must reach its folder; pytest's
    own temporary root is private (0700), so this one is world-searchable."""
    path = Path(tempfile.mkdtemp(prefix="newsdesk-server-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_local_postgres_server_keeps_runs_across_restarts_and_stops_cleanly(folder):
    port = free_port()
    proc = _serve(folder, port)
    url = f"http://127.0.0.1:{port}"
    with TrainingLogger("team", run_name="first", tracking_uri=url) as log:
        for step in range(1, 101):
            log.log_metrics({"train/loss": 1.0 / step}, step=step)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-2000:]
    assert "127.0.0.1" in out and "PostgreSQL" in out
    pg_port = int(out.split("PostgreSQL ")[1].split(" on 127.0.0.1:")[1].split()[0])
    assert not _listening(port) and not _listening(pg_port)  # both stopped, nothing orphaned

    proc = _serve(folder, port)  # the same cluster again: the run is still there
    try:
        history = MlflowClient(url).get_metric_history(log.run_id, "train/loss")
        assert sorted(m.step for m in history) == list(range(1, 101))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def test_the_database_password_is_neither_in_argv_nor_in_the_output(pg_database, folder):
    """The URI comes in through MLFLOW_BACKEND_STORE_URI (as `mlflow server` reads it) and goes
    on to the server the same way: no process of the tree shows the password in `ps`."""
    password = urlsplit(pg_database).password
    assert password  # the test database has one, as a team database would
    port = free_port()
    proc = _launch(folder, port, env={**os.environ, "MLFLOW_BACKEND_STORE_URI": pg_database})
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        with TrainingLogger("secret", tracking_uri=f"http://127.0.0.1:{port}") as log:
            log.log_metrics({"train/loss": 1.0}, step=1)
        tree = _process_tree(proc.pid)
        assert len(tree) >= 2  # newsdesk and the mlflow server (and its workers)
        for pid in tree:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert password not in cmdline, f"password visible in ps: {cmdline}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert password not in out
    assert "***@127.0.0.1" in out  # the store is shown, its password masked


def test_sigterm_while_the_server_starts_leaves_nothing_running(folder):
    """SIGTERM once left an orphaned `mlflow server` when it landed during the start."""
    port = free_port()
    proc = _launch(folder, port, "--local-postgres", str(folder / "postgres"))
    lines = []
    for line in proc.stdout:  # wait until the mlflow server process is being started
        lines.append(line)
        if line.startswith("starting mlflow server"):
            break
    time.sleep(0.5)  # the server is launched and not yet healthy
    tree = _process_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out[-2000:]
    assert "ready:" not in out  # it was stopped during the start
    pg_port = int(out.split(" on 127.0.0.1:")[1].split()[0])
    time.sleep(1)
    assert not _listening(port) and not _listening(pg_port)
    alive = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"left running: {alive}"
