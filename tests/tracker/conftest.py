"""Fixtures of the tracker's tests."""

from __future__ import annotations

import shutil

import pytest

from tracker.server.mlflow_server import TrackingServer


@pytest.fixture
def server(tmp_path, _template_db, monkeypatch):
    """A real `mlflow server` process on 127.0.0.1 with a SQLite backend, for the test alone."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "server.db"
    shutil.copy(_template_db, db)
    server = TrackingServer.on_free_port(f"sqlite:///{db}", tmp_path / "artifacts").start()
    yield server
    server.stop()
