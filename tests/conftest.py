"""Shared fixtures: a real SQLite MLflow store per test, and the real corpus by path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data",
        default=os.environ.get("NEWSDESK_DATA"),
        help="THUCNews folder (default: $NEWSDESK_DATA)",
    )


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow database, made once: migrations take seconds."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store_uri(tmp_path: Path, _template_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite tracking store in tmp_path; the working directory is tmp_path too."""
    store = tmp_path / "mlruns"
    store.mkdir()
    shutil.copy(_template_db, store / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{store / 'mlflow.db'}"


@pytest.fixture(scope="session")
def thucnews_dir(pytestconfig: pytest.Config) -> Path:
    """The real THUCNews folder; its absence is an error, not a skip."""
    value = pytestconfig.getoption("--data")
    if not value:
        raise pytest.UsageError("set NEWSDESK_DATA or pass --data to the THUCNews folder")
    path = Path(value).resolve()
    if not (path / "train.txt").is_file():
        raise pytest.UsageError(f"{path} has no train.txt (NEWSDESK_DATA / --data)")
    return path
