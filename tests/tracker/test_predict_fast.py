"""`newsdesk predict` finds and loads a registered newsdesk model without importing MLflow, and
predicts exactly what MLflow's own loading predicts; a new champion is seen at once, and a
model whose files are remote is downloaded once into the cache."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import write_slice
from tracker.cli import main
from tracker.dashboard import model_files
from tracker.dashboard.predict import load_for_prediction, load_model
from tracker.store.location import resolve_store

HEADLINES = ["央行宣布下调存款准备金率", "湖人队主场击败勇士队", "新款游戏主机正式发售"]
MODEL = "dash-classifier"
CHAMPION_URI = f"models:/{MODEL}@champion"


@pytest.fixture
def champion(trained_copy):
    assert main(["promote", "--experiment", "dash", "--tracking-uri", trained_copy["uri"]]) == 0
    return trained_copy


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_the_registry_read_without_mlflow_names_the_version_mlflow_names(champion):
    store = resolve_store(champion["uri"]).tracking_uri
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    expected = client.get_model_version_by_alias(MODEL, "champion")
    found = model_files.find_version(CHAMPION_URI, store)
    assert found is not None
    assert (found.name, found.version) == (MODEL, str(expected.version))
    assert found.run_id == expected.run_id
    assert found.source == client.get_model_version_download_uri(MODEL, expected.version)
    by_number = model_files.find_version(f"models:/{MODEL}/{expected.version}", store)
    assert by_number == found
    assert model_files.find_version(f"models:/{MODEL}@no-such-alias", store) is None
    assert model_files.find_version("runs:/abc/model", store) is None


def test_the_fast_load_predicts_what_mlflow_loading_predicts(champion):
    fast = load_for_prediction(CHAMPION_URI, champion["uri"])
    assert isinstance(fast, model_files.TextModel)
    full = load_model(CHAMPION_URI, champion["uri"], check_requirements=False)
    frame = pd.DataFrame({"text": HEADLINES})
    _frames_equal(fast.predict(frame), full.predict(frame))


def test_a_new_champion_is_predicted_with_at_once(champion):
    """The alias is looked up on every call: promoting another version changes what the next
    prediction uses."""
    store = resolve_store(champion["uri"]).tracking_uri
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    current = client.get_model_version_by_alias(MODEL, "champion")
    experiment = client.get_experiment_by_name("dash").experiment_id
    other = next(
        m
        for m in client.search_logged_models(experiment_ids=[experiment])
        if m.source_run_id != current.run_id
    )
    version = client.create_model_version(
        MODEL, other.artifact_location, run_id=other.source_run_id, model_id=other.model_id
    )
    client.set_registered_model_alias(MODEL, "champion", version.version)
    found = model_files.find_version(CHAMPION_URI, store)
    assert found is not None and found.version == str(version.version)
    assert found.run_id == other.source_run_id
    fast = load_for_prediction(CHAMPION_URI, champion["uri"])
    full = load_model(f"models:/{MODEL}/{version.version}", champion["uri"])
    frame = pd.DataFrame({"text": HEADLINES})
    _frames_equal(fast.predict(frame), full.predict(frame))


def test_predict_from_the_shell_imports_no_mlflow(champion, tmp_path):
    args = ["predict", "--experiment", "dash", "--tracking-uri", champion["uri"], *HEADLINES]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tracker.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "torch" in imported and "mlflow" not in imported
    full = load_model(CHAMPION_URI, champion["uri"], check_requirements=False)
    expected = full.predict(pd.DataFrame({"text": HEADLINES}))["label"].tolist()
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == expected


@pytest.mark.server
def test_a_remote_model_is_downloaded_once_into_the_cache(server, thucnews_dir, tmp_path):
    """On a tracking server the registry is read over its REST API and the files, which the
    server holds, are downloaded once: the second prediction reads the cached copy."""
    data = write_slice(thucnews_dir, tmp_path / "slice", {"train": 300, "dev": 100, "test": 100})
    common = ["--tracking-uri", server.url, "--experiment", "remote"]
    assert main(["train", "--model", "linear", "--data", str(data), "--quiet", *common]) == 0
    assert main(["promote", *common]) == 0
    uri = "models:/remote-classifier@champion"
    found = model_files.find_version(uri, server.url)
    assert found is not None and not found.source.startswith("file://")
    cache = tmp_path / "model-cache"
    first = load_for_prediction(uri, server.url, cache_root=cache)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries == [found.cache_key(server.url)]  # one whole copy, no temporary left
    marker = cache / entries[0] / "MLmodel"
    stamp = marker.stat().st_mtime_ns
    second = load_for_prediction(uri, server.url, cache_root=cache)
    assert marker.stat().st_mtime_ns == stamp and sorted(p.name for p in cache.iterdir()) == entries
    full = load_model(uri, server.url, check_requirements=False)
    frame = pd.DataFrame({"text": HEADLINES})
    assert isinstance(first, model_files.TextModel) and isinstance(second, model_files.TextModel)
    _frames_equal(first.predict(frame), full.predict(frame))
    _frames_equal(second.predict(frame), full.predict(frame))
