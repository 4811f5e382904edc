"""Driving the MLflow UI in Debian's headless Chromium (Playwright, no browser download).

Shared by the end-to-end test and `benchmarks/ui_screenshot.py` (the README's screenshot).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing Google hosts that this
# machine's closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
# `expect` has its own timeout (5 s), apart from the context's: the runs table once took longer
# than that to fill while other tests trained beside it (make test runs two workers).
expect.set_options(timeout=TIMEOUT_MS)


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser, url: str, width: int = 1500, height: int = 950):
    """A fresh context per page: the UI keeps view state (filters, modes) in local storage."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(url)
        # The UI polls the server (auto-refresh), so "network idle" never comes: wait for the
        # app's own side panel instead, and close it to give the page its full width.
        close = page.get_by_role("button", name="Close")
        close.first.wait_for()
        close.first.click()
        yield page
    finally:
        context.close()


def runs_url(
    base: str,
    experiment_id: str,
    search: str | None = None,
    charts: bool = False,
    order_by_metric: str | None = None,
):
    query = []
    if search:
        query.append(f"searchFilter={quote(search)}")
    if charts:
        query.append("compareRunsMode=CHART")
    if order_by_metric:  # highest first, as the UI's "Sort" menu does for a metric
        query.append(f"orderByKey={quote(f'metrics.`{order_by_metric}`')}&orderByAsc=false")
    suffix = ("?" + "&".join(query)) if query else ""
    return f"{base}/#/experiments/{experiment_id}/runs{suffix}"


# The expand button of a parent run's name cell (MLflow's RunNameCellRenderer).
EXPAND_CHILD_RUNS = 'button[data-component-id*="runnamecellrenderer"]'
RUN_LINKS = 'a[href*="/runs/"]'


def run_metrics_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics"


def registered_model_url(base: str, name: str) -> str:
    return f"{base}/#/models/{quote(name)}"


def comparison_screenshot(browser, base: str, experiment_id: str, target: Path) -> Path:
    """The experiment's chart view: every run on shared axes, train and val curves first."""
    with open_page(browser, runs_url(base, experiment_id, charts=True), 1600, 1250) as page:
        expect(page.get_by_text("perf/samples_per_s").first).to_be_visible()
        # Fold the groups of summary metrics (single points, best-so-far, per class, system).
        sections = ("best", "perf", "system", "test", "test/f1", "test/precision", "test/recall")
        for section in sections:
            header = page.get_by_text(section, exact=True)
            if header.count():
                header.first.click()
        for metric in ("train/loss", "val/loss", "val/acc"):
            expect(page.get_by_text(metric, exact=True).first).to_be_visible()
        page.wait_for_timeout(1500)  # the charts animate in
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))
    return target
