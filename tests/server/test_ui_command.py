"""`newsdesk ui` as a process (issue 36, item 7): the dashboard in one process, the MLflow UI
beside it on request (opening on the experiment's runs), a taken port is an error naming it,
and SIGTERM leaves nothing running."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import psutil
import pytest

from tests.conftest import dashboard_settings, newsdesk_command
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


def _stops_whole(ui: subprocess.Popen, pgids: set[int], port: int) -> None:
    ui.send_signal(signal.SIGTERM)
    assert ui.wait(timeout=60) == 0
    deadline = time.monotonic() + 15
    while any(_group(g) for g in pgids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_group(g) for g in pgids), "a process of the UI outlived newsdesk ui"
    with socket.socket() as probe:
        # Nothing listens on it any more (SO_REUSEADDR: closed connections may linger in
        # TIME_WAIT, which a new server may bind over, as the UI itself does).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_the_dashboard_is_one_process_and_sigterm_stops_it(trained_store, tmp_path):
    port = free_port()
    command = newsdesk_command(
        "ui", "--tracking-uri", trained_store, "--experiment", "uiexp", "--port", str(port)
    )
    ui = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = ui.stdout.readline()
        assert re.search(rf"newsdesk dashboard: http://127\.0\.0\.1:{port}/", line), line
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/settings", timeout=5
                ) as a:
                    settings = json.load(a)
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.2)
        assert "uiexp" in [e["name"] for e in settings["experiments"]]
        assert settings["mlflow_ui"] is None
        assert psutil.Process(ui.pid).children(recursive=True) == []
        _stops_whole(ui, set(), port)  # it started no process
    finally:
        if ui.poll() is None:
            ui.kill()


def test_on_a_tracking_server_it_reads_its_api_and_links_its_mlflow_ui(trained_store, tmp_path):
    from tracker.server.mlflow_server import TrackingServer

    server = TrackingServer.on_free_port(trained_store, tmp_path / "artifacts").start()
    port = free_port()
    command = newsdesk_command(
        "ui", "--tracking-uri", server.url, "--experiment", "uiexp", "--port", str(port)
    )
    ui = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert "newsdesk dashboard" in ui.stdout.readline()
        assert re.fullmatch(
            rf"MLflow UI: {server.url}/#/experiments/\d+/runs", ui.stdout.readline().strip()
        )
        settings = dashboard_settings(f"http://127.0.0.1:{port}")
        assert settings["mlflow_ui"] == server.url
        exp = next(e["id"] for e in settings["experiments"] if e["name"] == "uiexp")
        url = f"http://127.0.0.1:{port}/api/runs?experiment={exp}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            (run,) = json.load(answer)["runs"]
        assert run["metrics"] == {"train/loss": 1.0}
        _stops_whole(ui, set(), port)
    finally:
        if ui.poll() is None:
            ui.kill()
        server.stop()


def test_mlflow_port_starts_the_mlflow_ui_beside_it_and_stops_it_too(trained_store, tmp_path):
    port, mlflow_port = free_port(), free_port()
    command = newsdesk_command(
        "ui", "--tracking-uri", trained_store, "--experiment", "uiexp", "--port", str(port),
        "--mlflow-port", str(mlflow_port),
    )  # fmt: skip
    ui = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert "newsdesk dashboard" in ui.stdout.readline()
        line = ui.stdout.readline().strip()
        # The experiment's runs (the model-training view), not MLflow's GenAI overview.
        assert re.fullmatch(
            rf"MLflow UI: http://127\.0\.0\.1:{mlflow_port}/#/experiments/\d+/runs", line
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=10) as a:
            assert a.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/settings", timeout=10) as a:
            assert json.load(a)["mlflow_ui"] == f"http://127.0.0.1:{mlflow_port}"
        children = [c for c in psutil.Process(ui.pid).children(recursive=True) if c.is_running()]
        # The mlflow CLI and the one uvicorn server it starts; no workers, no job runner.
        assert 1 <= len(children) <= 2, [c.cmdline()[:3] for c in children]
        _stops_whole(ui, {os.getpgid(children[0].pid)}, mlflow_port)
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
    assert "dashboard" not in done.stdout
