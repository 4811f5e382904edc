from pathlib import Path

from tracker.store.location import DEFAULT_TRACKING_URI, default_spool_dir, resolve_store


def test_default_store_is_sqlite_in_mlruns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = resolve_store(None, environ={})
    assert DEFAULT_TRACKING_URI == "sqlite:///mlruns/mlflow.db"
    assert loc.tracking_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert loc.artifact_root == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert (tmp_path / "mlruns").is_dir()
    assert default_spool_dir(loc) == tmp_path / "mlruns" / "spool"


def test_environment_overrides_default_and_argument_overrides_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5999"}
    assert resolve_store(None, environ=env).tracking_uri == "http://127.0.0.1:5999"
    assert resolve_store(None, environ=env).artifact_root is None
    explicit = resolve_store(f"sqlite:///{tmp_path}/other/x.db", environ=env)
    assert explicit.tracking_uri == f"sqlite:///{tmp_path}/other/x.db"
    assert Path(tmp_path / "other").is_dir()


def test_http_store_spools_under_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = resolve_store("http://127.0.0.1:5999", environ={})
    assert default_spool_dir(loc) == Path("mlruns") / "spool"
