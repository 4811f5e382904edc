"""Commands that only read never create a store, and say which store they looked in (issue 38,
item 5). Real processes, run from a folder nothing was trained in."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import newsdesk_command
from tracker import TrainingLogger, WriterConfig
from tracker.store.location import nearest_store

pytestmark = pytest.mark.slow  # starts `newsdesk` processes


def run_in(folder, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        newsdesk_command(*args), cwd=folder, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize(
    "args",
    [("compare",), ("predict", "央行宣布下调存款准备金率"), ("promote",)],
    ids=["compare", "predict", "promote"],
)
def test_reading_commands_leave_an_empty_folder_empty(tmp_path, monkeypatch, args):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    done = run_in(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert f"no MLflow store at {tmp_path / 'mlruns' / 'mlflow.db'}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_given_explicitly_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    missing = tmp_path / "elsewhere" / "mlflow.db"
    done = run_in(tmp_path, "compare", "--tracking-uri", f"sqlite:///{missing}")
    assert done.returncode == 2
    assert f"no MLflow store at {missing} (--tracking-uri)" in done.stderr
    assert not missing.parent.exists()


def test_unknown_experiment_names_the_store(store_uri, tmp_path):
    with TrainingLogger("known", tracking_uri=store_uri, writer_config=WriterConfig()) as log:
        log.log_metric("x", 1.0, step=1)
    done = run_in(tmp_path, "compare", "--tracking-uri", store_uri, "--experiment", "missing")
    assert done.returncode == 2
    assert f"unknown experiment 'missing' in {store_uri}" in done.stderr
    assert "known" in done.stderr


def test_nearest_store_is_found_from_a_subfolder(tmp_path):
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").write_bytes(b"")
    below = tmp_path / "notebooks" / "deeper"
    below.mkdir(parents=True)
    assert nearest_store(below) == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert nearest_store(tmp_path.parent) is None or not nearest_store(tmp_path.parent).startswith(
        f"sqlite:///{tmp_path}"
    )
