"""Promotion on evidence, on real FastText runs on a THUCNews slice: a seed's difference does not
move the champion, a real improvement does (with the statistics on the version), runs tested
on different data are not compared, and `compare` says which runs are tied with the best."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import write_slice
from tracker.cli import main
from tracker.dashboard.paired import run_predictions

MODEL = "ev-classifier"


def _train(data: Path, uri: str, steps: int, seed: int) -> str:
    code = main(
        [
            "train",
            "--model",
            "fasttext",
            "--data",
            str(data),
            "--tracking-uri",
            uri,
            "--experiment",
            "ev",
            "--max-steps",
            str(steps),
            "--set",
            f"train.min_steps={steps}",
            "--seed",
            str(seed),
            "--quiet",
            "--no-system-metrics",
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("ev").experiment_id
    return client.search_runs([experiment], order_by=["attributes.start_time DESC"])[0].info.run_id


@pytest.fixture(scope="module")
def runs(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """FastText for 10 steps, and for 300 steps with two seeds, on one slice; 300 steps once
    more on a slice with other test lines."""
    root = tmp_path_factory.mktemp("evidence")
    data = write_slice(thucnews_dir, root / "slice", {"train": 2000, "dev": 300, "test": 600})
    other = write_slice(thucnews_dir, root / "other", {"train": 2000, "dev": 300, "test": 601})
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    return {
        "uri": uri,
        "root": root,
        "short": _train(data, uri, 10, 1),
        "long": _train(data, uri, 300, 1),
        "reseeded": _train(data, uri, 300, 2),
        "elsewhere": _train(other, uri, 300, 1),
    }


@pytest.fixture
def store(runs, tmp_path) -> dict:
    """The module's runs in a store of this test's own (the registry starts empty)."""
    import shutil

    db = tmp_path / "mlflow.db"
    shutil.copy(runs["uri"].removeprefix("sqlite:///"), db)
    return {**runs, "uri": f"sqlite:///{db}"}


def _promote(store: dict, *extra: str) -> int:
    return main(
        [
            "promote",
            "--experiment",
            "ev",
            "--model-name",
            MODEL,
            "--tracking-uri",
            store["uri"],
            *extra,
        ]
    )


def _compare(store: dict, *extra: str) -> int:
    return main(["compare", "--tracking-uri", store["uri"], "--experiment", "ev", *extra])


def _champion(store: dict):
    return MlflowClient(tracking_uri=store["uri"]).get_model_version_by_alias(MODEL, "champion")


def test_every_run_keeps_its_test_predictions(runs):
    client = MlflowClient(tracking_uri=runs["uri"])
    found = run_predictions(client, runs["long"])
    assert found is not None and len(found.labels) == 600
    run = client.get_run(runs["long"])
    assert found.accuracy == pytest.approx(run.data.metrics["test/acc"])
    assert np.all((found.probability > 0) & (found.probability <= 1))
    elsewhere = run_predictions(client, runs["elsewhere"])
    assert elsewhere is not None and elsewhere.digest != found.digest


def test_a_real_improvement_is_promoted_with_its_statistics(store, capsys):
    assert _promote(store, "--run", store["short"]) == 0
    assert "first champion" in capsys.readouterr().out
    assert _promote(store, "--run", store["long"]) == 0
    out = capsys.readouterr().out
    assert "-> version 2" in out and "McNemar exact p" in out
    champion = _champion(store)
    assert champion.run_id == store["long"]
    tags = champion.tags
    assert float(tags["promotion.p_value"]) < 0.05
    assert float(tags["promotion.accuracy_difference"]) > 0
    assert float(tags["promotion.ci_low"]) > 0
    assert tags["promotion.against_version"] == "1" and "promotion.forced" not in tags


def test_a_seeds_difference_does_not_move_the_champion(store, capsys):
    assert _promote(store, "--run", store["long"]) == 0
    capsys.readouterr()
    assert _promote(store, "--run", store["reseeded"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"kept {MODEL}@champion version 1")
    p_value = float(re.search(r"McNemar exact p = ([0-9.e-]+)", out).group(1))
    assert p_value >= 0.05
    assert _champion(store).run_id == store["long"]
    # --force moves it anyway and says so on the version.
    beaten = "does not beat it" in out
    if not beaten:
        assert _promote(store, "--run", store["reseeded"], "--force") == 0
        forced = _champion(store)
        assert forced.run_id == store["reseeded"] and forced.tags["promotion.forced"] == "true"


def test_runs_on_different_test_splits_are_not_compared(store, capsys):
    client = MlflowClient(tracking_uri=store["uri"])
    digests = [run_predictions(client, store[k]).digest for k in ("long", "elsewhere")]
    assert _promote(store, "--run", store["long"]) == 0
    capsys.readouterr()
    # The other run, with the mode that makes it the better one on test/acc: only the test
    # split stands in the way.
    acc = {k: client.get_run(store[k]).data.metrics["test/acc"] for k in ("long", "elsewhere")}
    mode = "max" if acc["elsewhere"] > acc["long"] else "min"
    code = _promote(store, "--run", store["elsewhere"], "--mode", mode)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert digests[0][:12] in err and digests[1][:12] in err
    assert _champion(store).run_id == store["long"]


def test_compare_tests_two_runs_and_marks_ties_with_the_best(store, tmp_path, capsys):
    # The run on other test lines would be compared with nothing: the table leaves it out.
    MlflowClient(tracking_uri=store["uri"]).delete_run(store["elsewhere"])
    assert _compare(store, "--paired", store["long"], store["short"]) == 0
    out = capsys.readouterr().out
    assert "McNemar exact p" in out and out.strip().endswith("significant at alpha 0.05")
    assert _compare(store, "--out", str(tmp_path)) == 0
    table = capsys.readouterr().out
    assert "vs best" in table and "worse (p=" in table, table
    import pandas as pd

    saved = pd.read_csv(tmp_path / "compare.csv")
    by_run = dict(zip(saved["run_id"], saved["vs best"].fillna(""), strict=True))
    assert by_run[store["short"]].startswith("worse")
    assert by_run[store["reseeded"]].startswith(("tied", "best"))
