"""Fault 6: a server behind MLflow's basic auth (`newsdesk server --auth`)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command
from tracker.server.mlflow_server import wait_healthy
from tracker.server.ports import free_port

pytestmark = pytest.mark.server

ADMIN_PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="module")
def auth_server(postgres, tmp_path_factory: pytest.TempPathFactory):
    """`newsdesk server --auth` itself, as a user would start it (one for this module)."""
    from tests.conftest import PG_TEMPLATE

    tmp_path = tmp_path_factory.mktemp("auth")
    pg_database = postgres.create_database("auth_server", template=PG_TEMPLATE)
    port = free_port()
    env = {**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    proc = subprocess.Popen(
        newsdesk_command(
            "server",
            "--backend-store-uri",
            pg_database,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--port",
            str(port),
            "--workers",
            "1",
            "--auth",
        ),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def _train(url: str, data: Path, tmp_path: Path, user: str, password: str):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": password,
    }
    started = time.monotonic()
    done = subprocess.run(
        newsdesk_command(
            "train",
            "--model",
            "fasttext",
            "--data",
            str(data),
            "--tracking-uri",
            url,
            "--experiment",
            "auth",
            "--max-steps",
            "5",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--set",
            "model.buckets=1000",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, time.monotonic() - started


def test_bad_credentials_fail_before_training_with_one_line(auth_server, thucnews_slice, tmp_path):
    done, _ = _train(auth_server, thucnews_slice, tmp_path, "admin", "wrong-password")
    print(f"bad credentials: exit {done.returncode}: {done.stderr.strip()}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP 401" in lines[0] and "MLFLOW_TRACKING_PASSWORD" in lines[0]
    assert "Traceback" not in done.stderr and "test/acc" not in done.stdout
    # Nothing was created: no experiment, no run.
    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in admin.items():
            mp.setenv(key, value)
        assert MlflowClient(auth_server).get_experiment_by_name("auth") is None

    # The right credentials train and log.
    done, _ = _train(auth_server, thucnews_slice, tmp_path, "admin", ADMIN_PASSWORD)
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in admin.items():
            mp.setenv(key, value)
        client = MlflowClient(auth_server)
        (run,) = client.search_runs([client.get_experiment_by_name("auth").experiment_id])
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 5


def test_unauthenticated_request_is_refused_with_401(auth_server):
    request = urllib.request.Request(
        f"{auth_server}/api/2.0/mlflow/experiments/search",
        data=b'{"max_results": 1}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_a_read_only_user_is_refused_before_data_preparation(auth_server, thucnews_slice, tmp_path):
    """A READ user once passed the check, trained, then failed at runs/create with a raw 403."""
    from mlflow.server import get_app_client

    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in admin.items():
            mp.setenv(key, value)
        auth = get_app_client("basic-auth", tracking_uri=auth_server)
        auth.create_user("reader", "reader-password-1")
        client = MlflowClient(auth_server)
        if client.get_experiment_by_name("auth") is None:
            client.create_experiment("auth")
        runs_before = client.search_runs([client.get_experiment_by_name("auth").experiment_id])

    done, _ = _train(auth_server, thucnews_slice, tmp_path, "reader", "reader-password-1")
    print(f"read-only user: exit {done.returncode}: {done.stderr.strip()}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP 403" in lines[0]
    assert "'reader'" in lines[0] and "'auth'" in lines[0]
    assert not (tmp_path / "cache").exists()  # refused before the data was prepared
    with pytest.MonkeyPatch.context() as mp:
        for key, value in admin.items():
            mp.setenv(key, value)
        runs_after = client.search_runs([client.get_experiment_by_name("auth").experiment_id])
    assert len(runs_after) == len(runs_before)  # no run was created
