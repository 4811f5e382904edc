"""What the dashboard's panels show, computed from the store's plain records: runs side by
side (params that differ, final metrics with the difference to the linear baseline on the same
data, per-class F1), a run's evaluations over time, and the registry."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from tracker import schema
from tracker.board.sources import RunRecord, json_number

FINAL_METRICS = (
    schema.TEST_ACC,
    schema.TEST_MACRO_F1,
    schema.TEST_LOSS,
    schema.BEST_ACC,
    schema.BEST_LOSS,
    schema.TRAIN_SECONDS,
)
BASELINE_MODEL = "linear"
F1_PREFIX = schema.PER_CLASS_PREFIXES[0] + "/"
# Where the trainers keep one record per validation (`trainers.evaluation_log`).
EVALUATIONS_DIR = schema.EVALUATIONS_DIR


def compare(selected: list[RunRecord], experiment_runs: list[RunRecord]) -> dict[str, Any]:
    """Runs side by side: the params whose values differ, final metrics and their difference
    to the baseline (the newest finished linear run with the same data fingerprint), and the
    runs x classes matrix of test F1."""
    keys = sorted({k for run in selected for k in run.params})
    differing = {}
    for key in keys:
        values = [run.params.get(key) for run in selected]
        if len(set(values)) > 1:
            differing[key] = values
    rows = []
    for run in selected:
        baseline = find_baseline(run, experiment_runs)
        finals = {}
        for key in FINAL_METRICS:
            value = run.metrics.get(key)
            delta = None
            if value is not None and baseline is not None and key in baseline.metrics:
                delta = value - baseline.metrics[key]
            finals[key] = {
                "value": None if value is None else json_number(value),
                "delta": None if delta is None or not math.isfinite(delta) else delta,
            }
        rows.append(
            {
                "id": run.id,
                "name": run.name,
                "model": run.tags.get(schema.MODEL_TAG),
                "baseline": None
                if baseline is None
                else {"id": baseline.id, "name": baseline.name},
                "metrics": finals,
            }
        )
    classes = sorted(
        {k[len(F1_PREFIX) :] for run in selected for k in run.metrics if k.startswith(F1_PREFIX)}
    )
    heatmap = [
        [
            json_number(run.metrics[F1_PREFIX + c]) if F1_PREFIX + c in run.metrics else None
            for c in classes
        ]
        for run in selected
    ]
    return {
        "runs": [{"id": r.id, "name": r.name} for r in selected],
        "params": differing,
        "final_metrics": list(FINAL_METRICS),
        "rows": rows,
        "classes": classes,
        "f1": heatmap,
    }


def find_baseline(run: RunRecord, runs: list[RunRecord]) -> RunRecord | None:
    """The linear baseline trained on the same data as `run` (same data fingerprint), the
    newest finished one; None when there is none (or `run` has no fingerprint)."""
    fingerprint = run.tags.get(schema.DATA_FINGERPRINT_TAG)
    if not fingerprint:
        return None
    candidates = [
        r
        for r in runs
        if r.tags.get(schema.MODEL_TAG) == BASELINE_MODEL
        and r.tags.get(schema.DATA_FINGERPRINT_TAG) == fingerprint
        and r.status == "FINISHED"
        and r.id != run.id
    ]
    return max(candidates, key=lambda r: r.start_time or 0, default=None)


class Evaluations:
    """A run's per-validation records (`evaluations/dev/step_*.json`), read through MLflow's
    artifact repository (a local folder or the tracking server), each file once: they never
    change once written."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._records: dict[tuple[str, str], dict] = {}

    def of_run(self, run_id: str) -> list[dict]:
        listed = sorted(
            f.path for f in self.client.list_artifacts(run_id, EVALUATIONS_DIR) if not f.is_dir
        )
        with tempfile.TemporaryDirectory() as tmp:
            for path in listed:
                if (run_id, path) in self._records:
                    continue
                # One file at a time: a folder download fetches every file again.
                file = self.client.download_artifacts(run_id, path, tmp)
                try:
                    self._records[(run_id, path)] = json.loads(Path(file).read_text("utf-8"))
                except (OSError, ValueError):
                    continue  # a file still being uploaded: read on the next poll
        records = [self._records[(run_id, p)] for p in listed if (run_id, p) in self._records]
        return sorted(records, key=lambda r: r.get("step", 0))


def registry(tracking_uri: str) -> list[dict[str, Any]]:
    """Every registered model: its aliases (`champion`, `previous`), its versions newest
    first, and for each the run it came from."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    models = []
    for model in client.search_registered_models(max_results=1000):
        versions = client.search_model_versions(f"name = '{model.name}'", max_results=1000)
        aliases = dict(model.aliases or {})
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        run_ids = {v.run_id for v in versions if v.run_id}
        runs = {run_id: _run_info(client, run_id) for run_id in run_ids}
        models.append(
            {
                "name": model.name,
                "aliases": {a: str(v) for a, v in aliases.items()},
                "versions": [
                    {
                        "version": str(v.version),
                        "aliases": sorted(by_version.get(str(v.version), [])),
                        "created": v.creation_timestamp,
                        "run_id": v.run_id,
                        "run_name": runs.get(v.run_id, (None, None))[0],
                        "experiment_id": runs.get(v.run_id, (None, None))[1],
                        "tags": dict(v.tags or {}),
                        "status": v.status,
                    }
                    for v in sorted(versions, key=lambda v: -int(v.version))
                ],
            }
        )
    return models


def _run_info(client, run_id: str) -> tuple[str | None, str | None]:
    """(name, experiment id) of a version's run; (None, None) once the run is deleted."""
    try:
        info = client.get_run(run_id).info
    except Exception:  # noqa: BLE001 - a deleted run's versions stay in the registry
        return None, None
    return info.run_name, info.experiment_id
