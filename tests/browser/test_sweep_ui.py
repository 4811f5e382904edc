"""A sweep in the MLflow UI, in a real browser: the parent unfolds into its trials, and the
runs table sorts by the best-so-far metric `best/val_acc`."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect

from tests.browser.pages import EXPAND_CHILD_RUNS, RUN_LINKS, chromium, open_page, runs_url
from tests.conftest import write_slice
from tracker import schema
from tracker.cli import main
from tracker.server.mlflow_server import TrackingServer

pytestmark = pytest.mark.browser
PARENT = "sweep-sweep-ui-fasttext"


@pytest.fixture(scope="module")
def sweep_ui(thucnews_dir, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sweep-ui")
    data = write_slice(thucnews_dir, root / "slice", {"train": 640, "dev": 200, "test": 200})
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    code = main(
        [
            "sweep",
            "--model",
            "fasttext",
            "--trials",
            "3",
            "--data",
            str(data),
            "--tracking-uri",
            uri,
            "--experiment",
            "sweep-ui",
            "--max-steps",
            "15",
            "--set",
            "model.buckets=5000",
            "--set",
            "train.eval_every=5",
            "--quiet",
            "--no-system-metrics",
            "--cache-dir",
            str(root / "cache"),
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweep-ui")
    trials = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if schema.PARENT_RUN_TAG in r.data.tags
    ]
    server = TrackingServer.on_free_port(uri, root / "artifacts").start()
    try:
        with chromium() as browser:
            yield {
                "browser": browser,
                "url": server.url,
                "experiment_id": experiment.experiment_id,
                "trials": trials,
            }
    finally:
        server.stop()


def test_the_sweep_is_one_row_that_unfolds_into_its_trials(sweep_ui):
    with open_page(
        sweep_ui["browser"], runs_url(sweep_ui["url"], sweep_ui["experiment_id"])
    ) as page:
        expect(page.get_by_text("4 matching runs")).to_be_visible()
        expect(page.get_by_role("link", name=PARENT, exact=True)).to_have_count(1)
        expect(page.get_by_role("link", name="trial-0", exact=True)).to_have_count(0)  # folded
        page.locator(EXPAND_CHILD_RUNS).first.click()
        for n in range(3):
            expect(page.get_by_role("link", name=f"trial-{n}", exact=True)).to_have_count(1)
        names = page.locator(RUN_LINKS).all_inner_texts()
        assert names[0] == PARENT  # the trials below their parent
        assert sorted(names[1:]) == ["trial-0", "trial-1", "trial-2"]


def test_the_runs_table_sorts_by_best_val_acc(sweep_ui):
    best = {r.info.run_name: r.data.metrics[schema.BEST_ACC] for r in sweep_ui["trials"]}
    url = runs_url(sweep_ui["url"], sweep_ui["experiment_id"], order_by_metric=schema.BEST_ACC)
    with open_page(sweep_ui["browser"], url) as page:
        expect(page.get_by_text(f"Sort: {schema.BEST_ACC}")).to_be_visible()
        expect(page.get_by_role("link", name="trial-0", exact=True)).to_have_count(1)
        shown = [n for n in page.locator(RUN_LINKS).all_inner_texts() if n in best]
        assert sorted(shown) == sorted(best)
        values = [best[n] for n in shown]
        assert values == sorted(values, reverse=True)  # highest best/val_acc first
