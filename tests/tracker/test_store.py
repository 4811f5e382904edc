from pathlib import Path

from tracker import TrainingLogger
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


def test_experiment_names_cannot_put_artifacts_outside_the_store(store_uri, tmp_path):
    """`--experiment ../../../escaped-exp` once wrote artifacts outside the store's folder."""
    root = Path(store_uri.removeprefix("sqlite:///")).parent / "artifacts"
    for name in ("../../../escaped-exp", "/abs/exp", "新闻/分类", ".."):
        with TrainingLogger(name, tracking_uri=store_uri) as log:
            log.log_dict({"a": 1}, "report.json")
        written = [p for p in tmp_path.rglob("report.json")]
        assert len(written) == 1 and root in written[0].parents, (name, written)
        written[0].unlink()
    assert not (tmp_path.parent / "escaped-exp").exists()
