"""Screenshot of the MLflow UI's comparison view for the README, from a store of real runs.

    python benchmarks/ui_screenshot.py --store sqlite:///PATH/mlflow.db --experiment NAME \
        --out docs/mlflow_compare.png

The store is copied first (the best run is promoted in the copy, so the screenshot shows the
registry state a user would have), then served by `mlflow server` on loopback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow.tracking import MlflowClient  # noqa: E402

from tests.browser.pages import chromium, comparison_screenshot  # noqa: E402
from tracker.server.mlflow_server import TrackingServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="sqlite:/// URI of the runs")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--out", default="docs/mlflow_compare.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mlflow.db"
        shutil.copy(args.store.removeprefix("sqlite:///"), db)
        uri = f"sqlite:///{db}"
        experiment = MlflowClient(uri).get_experiment_by_name(args.experiment)
        if experiment is None:
            parser.error(f"--experiment {args.experiment!r} is not in {args.store}")
        server = TrackingServer.on_free_port(uri, Path(tmp) / "artifacts").start()
        try:
            with chromium() as browser:
                shot = comparison_screenshot(
                    browser, server.url, experiment.experiment_id, Path(args.out)
                )
        finally:
            server.stop()
    print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
