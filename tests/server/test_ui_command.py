"""`newsdesk ui` as a process (issue 36, item 7): one server process, the address of the
experiment's runs, a taken port is an error naming it, and SIGTERM leaves nothing running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import psutil
import pytest

from tests.conftest import newsdesk_command
from tracker import TrainingLogger, WriterConfig
from tracker.server.ports import free_port

pytestmark = pytest.mark.server


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


@pytest.fixture
def trained_store(store_uri):
    with TrainingLogger("uiexp", tracking_uri=store_uri, writer_config=WriterConfig()) as log:
        log.log_metric("train/loss", 1.0, step=1)
    return store_uri


def test_ui_serves_the_runs_page_with_one_process_and_stops_them_all(trained_store, tmp_path):
    port = free_port()
    command = newsdesk_command(
        "ui", "--tracking-uri", trained_store, "--experiment", "uiexp", "--port", str(port)
    )
    ui = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = ui.stdout.readline()  # printed once the UI answers
        match = re.search(r"MLflow UI: (http://127\.0\.0\.1:\d+/#/experiments/(\d+)/runs)", line)
        assert match, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert answer.status == 200
        children = psutil.Process(ui.pid).children(recursive=True)
        served_by = [c for c in children if c.is_running()]
        # The mlflow CLI and the one uvicorn server it starts; no workers, no job runner.
        assert 1 <= len(served_by) <= 2, [c.cmdline()[:3] for c in served_by]
        pgid = os.getpgid(served_by[0].pid)
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
        deadline = time.monotonic() + 15
        while _group(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group(pgid), "a process of the UI outlived newsdesk ui"
        with socket.socket() as probe:
            # Nothing listens on it any more (SO_REUSEADDR: closed connections may linger
            # in TIME_WAIT, which a new server may bind over, as the UI itself does).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    finally:
        if ui.poll() is None:
            ui.kill()


def test_a_taken_port_is_an_error_naming_it(trained_store, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            newsdesk_command("ui", "--tracking-uri", trained_store, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "MLflow UI" not in done.stdout
