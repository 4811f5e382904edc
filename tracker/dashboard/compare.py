"""Runs side by side as pandas DataFrames: plain data out; pictures live in `plots`."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from mlflow.tracking import MlflowClient

from tracker.schema import (
    BEST_VAL_ACC,
    BEST_VAL_LOSS,
    CURVE_ALIASES,
    MODEL_TAG,
    PARENT_RUN_TAG,
    RANK_PREFERENCE,
    SEED_GROUP_TAG,
    STEPS,
    TEST_REPORT_ARTIFACT,
    TRAIN_LOSS,
    VAL_ACC,
    VAL_LOSS,
)
from tracker.store.experiments import require_experiment
from tracker.store.location import existing_store
from tracker.store.mlflow_internals import METRIC_HISTORY_SQL

HISTORY_COLUMNS = ["run_id", "run_name", "key", "step", "value", "timestamp"]


def client_for(tracking_uri: str | None) -> MlflowClient:
    """A client of an existing store: reading never creates one (`existing_store`)."""
    return MlflowClient(tracking_uri=existing_store(tracking_uri))


def seed_groups(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per seed group (`newsdesk train --seeds N`): its model, how many runs, and the
    mean, standard deviation (n - 1), minimum and maximum of each of `metrics` over its runs.
    Empty when no run belongs to a group."""
    if "seed_group" not in frame.columns or frame["seed_group"].isna().all():
        return pd.DataFrame(columns=["seed_group", "model", "runs"])
    present = [m for m in metrics if m in frame.columns]
    rows = []
    for group, runs in frame.dropna(subset=["seed_group"]).groupby("seed_group", sort=False):
        row = {"seed_group": group, "model": runs["model"].iloc[0], "runs": len(runs)}
        for metric in present:
            values = runs[metric].dropna()
            row[f"{metric} mean"] = values.mean()
            row[f"{metric} std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
            row[f"{metric} min"] = values.min()
            row[f"{metric} max"] = values.max()
        rows.append(row)
    return pd.DataFrame(rows)


def runs_frame(
    experiment: str, tracking_uri: str | None = None, *, parent: str | None = None
) -> pd.DataFrame:
    """One row per run: ids, name, model tag, status, times, `params.*` and final metrics.

    Final metrics are each metric's last logged value (`test/acc`, `test/macro_f1`, ...);
    `best_val/acc` and `best_val/loss` are the best values over the validation history, and
    `steps` is the number of `train/loss` points (names in `tracker.schema`).
    `parent_run_id` is the run a run is nested under (a sweep's trials under the sweep);
    with `parent`, only the runs nested under that run. An unknown experiment is a
    `ValueError` that lists the known ones.
    """
    client = client_for(tracking_uri)
    experiment_id = require_experiment(client, experiment)
    runs = client.search_runs(
        [experiment_id], order_by=["attributes.start_time ASC"], max_results=10_000
    )
    rows = []
    for run in runs:
        info, data = run.info, run.data
        if parent is not None and data.tags.get(PARENT_RUN_TAG) != parent:
            continue
        row = {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "model": data.tags.get(MODEL_TAG),
            "status": info.status,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "duration_s": ((info.end_time - info.start_time) / 1000) if info.end_time else None,
            "parent_run_id": data.tags.get(PARENT_RUN_TAG),
            "seed_group": data.tags.get(SEED_GROUP_TAG),
        }
        row.update({f"params.{k}": v for k, v in data.params.items()})
        row.update(data.metrics)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(
            columns=[
                "run_id",
                "run_name",
                "model",
                "status",
                "start_time",
                "duration_s",
                "parent_run_id",
                "seed_group",
            ]
        )
    history = curve_history(frame["run_id"].tolist(), tracking_uri=tracking_uri)
    grouped = history.groupby(["run_id", "key"])
    derived = {
        BEST_VAL_ACC: (grouped["value"].max(), VAL_ACC),
        BEST_VAL_LOSS: (grouped["value"].min(), VAL_LOSS),
        STEPS: (grouped["step"].max(), TRAIN_LOSS),
    }
    best = pd.DataFrame(
        {
            column: values.xs(key, level="key")
            if (history["key"] == key).any()
            else pd.Series(dtype=float)
            for column, (values, key) in derived.items()
        }
    )
    frame = frame.merge(best, left_on="run_id", right_index=True, how="left")
    frame[STEPS] = frame[STEPS].astype("Int64")  # a count: no decimals, missing as <NA>
    return frame


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of `runs_frame` that hold metrics (logged or derived), sorted."""
    fixed = {"run_id", "run_name", "model", "status", "start_time", "duration_s"}
    fixed |= {"parent_run_id", "seed_group", "trials", "best_trial", "best_trial_run_id"}
    return sorted(c for c in frame.columns if c not in fixed and not c.startswith("params."))


def rank_metric(frame: pd.DataFrame) -> tuple[str, str] | None:
    """What to rank `frame`'s runs by when the user named nothing: the first metric of
    `schema.RANK_PREFERENCE` that some run has, with its direction; None when none has."""
    for metric, mode in RANK_PREFERENCE:
        if metric in frame.columns and frame[metric].notna().any():
            return metric, mode
    return None


def curve_history(run_ids: Sequence[str], tracking_uri: str | None = None) -> pd.DataFrame:
    """`metric_history` of the curves (`schema.CURVE_ALIASES`) under their newsdesk names: per
    run and curve, the first name the run logged it under (`eval_loss` of a Hugging Face run
    becomes `val/loss`)."""
    names = [name for aliases in CURVE_ALIASES.values() for name in aliases]
    history = metric_history(run_ids, names, tracking_uri=tracking_uri)
    if history.empty:
        return history
    parts = []
    for canonical, aliases in CURVE_ALIASES.items():
        mine = history[history["key"].isin(aliases)]
        if mine.empty:
            continue
        rank = mine["key"].map({name: i for i, name in enumerate(aliases)})
        first = rank.groupby(mine["run_id"]).transform("min")
        parts.append(mine[rank == first].assign(key=canonical))
    if not parts:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def collapse_sweeps(frame: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Parents with their best trial instead of every trial: the default comparison view.

    Nested runs are left out; a parent gets `trials` (how many runs it has), `best_trial` and
    `best_trial_run_id` (its best run by `metric`, `mode` "max" or "min"), and the best
    trial's metric values where it has none of its own, so it ranks among plain runs by what
    its sweep found.
    """
    if frame.empty or "parent_run_id" not in frame.columns:
        return frame
    nested = frame["parent_run_id"].notna()
    children, top = frame[nested], frame[~nested].copy()
    if children.empty:
        return top
    top["trials"] = top["run_id"].map(children.groupby("parent_run_id").size())
    best_rows = {}
    if metric in children.columns:
        ranked = children.dropna(subset=[metric]).sort_values(metric, ascending=(mode == "min"))
        best_rows = ranked.groupby("parent_run_id").head(1).set_index("parent_run_id")
    metric_columns = [c for c in frame.columns if "/" in c and not c.startswith("params.")]
    for index, row in top.iterrows():
        if len(best_rows) == 0 or row["run_id"] not in best_rows.index:
            continue
        best = best_rows.loc[row["run_id"]]
        top.at[index, "best_trial"] = best["run_name"]
        top.at[index, "best_trial_run_id"] = best["run_id"]
        for column in metric_columns:
            if pd.isna(row.get(column)) and not pd.isna(best.get(column)):
                top.at[index, column] = best[column]
    return top.reset_index(drop=True)


def metric_history(
    run_ids: Sequence[str], keys: Sequence[str], tracking_uri: str | None = None
) -> pd.DataFrame:
    """Long-form history: run_id, run_name, key, step, value, timestamp.

    On a database-backed store (SQLite, PostgreSQL) all series come back in one SQL query
    against MLflow's own tables (`tracker.store.mlflow_internals`); building one MLflow
    entity per point would take seconds for 150,000 points. Other stores (a tracking server)
    are asked once per (run, key) with `get_metric_history`, never once per point.
    """
    uri = existing_store(tracking_uri)
    if not run_ids or not keys:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    if _is_database(uri):
        frame = _sql_history(uri, list(run_ids), list(keys))
    else:
        frame = _client_history(client_for(uri), run_ids, keys)
    if frame.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return frame.sort_values(["run_id", "key", "step", "timestamp"], ignore_index=True)


def _is_database(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in {"sqlite", "postgresql", "mysql", "mssql"}


def _sql_history(uri: str, run_ids: list[str], keys: list[str]) -> pd.DataFrame:
    import sqlalchemy

    query = sqlalchemy.text(METRIC_HISTORY_SQL).bindparams(
        sqlalchemy.bindparam("run_ids", expanding=True),
        sqlalchemy.bindparam("keys", expanding=True),
    )
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(query, conn, params={"run_ids": run_ids, "keys": keys})
    finally:
        engine.dispose()
    frame.loc[frame["is_nan"].astype(bool), "value"] = float("nan")
    frame["step"] = frame["step"].astype("int64")
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame[HISTORY_COLUMNS]


def _client_history(
    client: MlflowClient, run_ids: Sequence[str], keys: Sequence[str]
) -> pd.DataFrame:
    from concurrent.futures import ThreadPoolExecutor

    names = {run_id: client.get_run(run_id).info.run_name for run_id in run_ids}

    def series(run_id: str, key: str) -> pd.DataFrame | None:
        points = client.get_metric_history(run_id, key)
        if not points:
            return None
        return pd.DataFrame(
            {
                "run_id": run_id,
                "run_name": names[run_id],
                "key": key,
                "step": [p.step for p in points],
                "value": [p.value for p in points],
                "timestamp": [p.timestamp for p in points],
            }
        )

    # A server answers several requests at once (workers); the waits overlap in threads.
    with ThreadPoolExecutor(max_workers=4) as pool:
        pairs = [(run_id, key) for run_id in run_ids for key in keys]
        frames = [f for f in pool.map(lambda rk: series(*rk), pairs) if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def per_class_frame(run_ids: Sequence[str], tracking_uri: str | None = None) -> pd.DataFrame:
    """Per-class test precision, recall, F1 and support from each run's test report.

    Class names are the ones the run was trained with (class.txt of its data). Runs without
    the report artifact are left out.
    """
    import json
    import tempfile

    from mlflow.exceptions import MlflowException

    client = client_for(tracking_uri)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in run_ids:
            try:
                path = client.download_artifacts(run_id, TEST_REPORT_ARTIFACT, tmp)
            except (MlflowException, OSError):
                continue
            with open(path, encoding="utf-8") as fh:
                report = json.load(fh)
            for order, (name, stats) in enumerate(report.get("classes", {}).items()):
                rows.append({"run_id": run_id, "class": name, "class_order": order, **stats})
    columns = ["run_id", "class", "class_order", "precision", "recall", "f1", "support"]
    return pd.DataFrame(rows, columns=columns)
