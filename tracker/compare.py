"""Runs side by side as pandas DataFrames: plain data out, pictures live in `tracker.plots`."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from mlflow.tracking import MlflowClient

from tracker.experiments import require_experiment
from tracker.store import resolve_store

HISTORY_COLUMNS = ["run_id", "run_name", "key", "step", "value", "timestamp"]


def client_for(tracking_uri: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri=resolve_store(tracking_uri).tracking_uri)


def runs_frame(experiment: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per run: ids, name, model tag, status, times, `params.*` and final metrics.

    Final metrics are each metric's last logged value (`test/acc`, `test/macro_f1`, ...);
    `best_val/acc` and `best_val/loss` are the best values over the validation history, and
    `steps` is the number of `train/loss` points.
    """
    client = client_for(tracking_uri)
    experiment_id = require_experiment(client, experiment)
    runs = client.search_runs(
        [experiment_id], order_by=["attributes.start_time ASC"], max_results=10_000
    )
    rows = []
    for run in runs:
        info, data = run.info, run.data
        row = {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "model": data.tags.get("model"),
            "status": info.status,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "duration_s": ((info.end_time - info.start_time) / 1000) if info.end_time else None,
        }
        row.update({f"params.{k}": v for k, v in data.params.items()})
        row.update(data.metrics)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(
            columns=["run_id", "run_name", "model", "status", "start_time", "duration_s"]
        )
    history = metric_history(
        frame["run_id"].tolist(), ["val/acc", "val/loss", "train/loss"], tracking_uri=tracking_uri
    )
    grouped = history.groupby(["run_id", "key"])["value"]
    best = pd.DataFrame(
        {
            "best_val/acc": grouped.max().xs("val/acc", level="key", drop_level=True)
            if (history["key"] == "val/acc").any()
            else pd.Series(dtype=float),
            "best_val/loss": grouped.min().xs("val/loss", level="key", drop_level=True)
            if (history["key"] == "val/loss").any()
            else pd.Series(dtype=float),
            "steps": grouped.count().xs("train/loss", level="key", drop_level=True)
            if (history["key"] == "train/loss").any()
            else pd.Series(dtype=float),
        }
    )
    return frame.merge(best, left_on="run_id", right_index=True, how="left")


def metric_history(
    run_ids: Sequence[str], keys: Sequence[str], tracking_uri: str | None = None
) -> pd.DataFrame:
    """Long-form history: run_id, run_name, key, step, value, timestamp.

    One `get_metric_history` request per (run, key) returns every point of that series at
    once (never one request per point).
    """
    client = client_for(tracking_uri)
    frames = []
    for run_id in run_ids:
        run_name = client.get_run(run_id).info.run_name
        for key in keys:
            points = client.get_metric_history(run_id, key)
            if not points:
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": run_id,
                        "run_name": run_name,
                        "key": key,
                        "step": [p.step for p in points],
                        "value": [p.value for p in points],
                        "timestamp": [p.timestamp for p in points],
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["run_id", "key", "step", "timestamp"], ignore_index=True)
