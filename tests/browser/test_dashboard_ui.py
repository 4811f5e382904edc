"""End to end in a real browser: four real runs, promoted, seen through the MLflow UI."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect

from tests.browser.pages import (
    chromium,
    comparison_screenshot,
    open_page,
    registered_model_url,
    run_metrics_url,
    runs_url,
)
from tests.conftest import copy_store
from tracker.dashboard.registry import promote
from tracker.server.mlflow_server import TrackingServer

pytestmark = pytest.mark.browser

MODELS = ("linear", "fasttext", "textcnn", "lstm")


@pytest.fixture(scope="module")
def ui(trained_store: dict, tmp_path_factory: pytest.TempPathFactory):
    """`mlflow server` on loopback over the four trained runs (a copy), the best promoted."""
    tmp_path = tmp_path_factory.mktemp("ui")
    uri = copy_store(trained_store["uri"], tmp_path)
    result = promote(trained_store["experiment"], metric="test/acc", mode="max", tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(trained_store["experiment"])
    runs = {
        r.data.tags["model"]: r.info.run_id for r in client.search_runs([experiment.experiment_id])
    }
    server = TrackingServer.on_free_port(uri, tmp_path / "artifacts").start()
    try:  # a browser that fails to start must not leave the server running
        with chromium() as browser:
            yield {
                "browser": browser,
                "url": server.url,
                "experiment_id": experiment.experiment_id,
                "runs": runs,
                "model_name": result.model_name,
            }
    finally:
        server.stop()


def test_experiment_page_lists_the_four_runs_with_their_model_tags(ui):
    base, exp = ui["url"], ui["experiment_id"]
    with open_page(ui["browser"], runs_url(base, exp)) as page:
        expect(page.get_by_text("4 matching runs")).to_be_visible()
        for name in MODELS:
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(1)
    # The model tag is on each run: the UI's own tag filter finds exactly that run.
    for name in MODELS:
        with open_page(ui["browser"], runs_url(base, exp, f'tags.model = "{name}"')) as page:
            expect(page.get_by_text("1 matching run")).to_be_visible()
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(1)
            for other in (m for m in MODELS if m != name):
                expect(page.get_by_role("link", name=other, exact=True)).to_have_count(0)


def test_run_page_shows_train_and_validation_charts(ui):
    url = run_metrics_url(ui["url"], ui["experiment_id"], ui["runs"]["lstm"])
    with open_page(ui["browser"], url) as page:
        search = page.get_by_placeholder("Search metric charts")
        for metric in ("train/loss", "val/loss", "val/acc"):
            search.fill(metric)
            # Each chart's legend names the run and the full metric key.
            expect(page.get_by_text(f"lstm ({metric})").first).to_be_visible()


def test_registered_model_page_shows_the_champion_alias(ui):
    with open_page(ui["browser"], registered_model_url(ui["url"], ui["model_name"])) as page:
        expect(page.get_by_text("@ champion").first).to_be_visible()
        expect(page.get_by_text("Version 1").first).to_be_visible()


def test_comparison_view_screenshot(ui, tmp_path):
    """The chart view renders every run's curves; the picture is kept for a human to look at."""
    shot = comparison_screenshot(
        ui["browser"], ui["url"], ui["experiment_id"], tmp_path / "compare.png"
    )
    assert shot.stat().st_size > 20_000  # a rendered page of charts, not a blank one
    print(f"screenshot: {shot}")
