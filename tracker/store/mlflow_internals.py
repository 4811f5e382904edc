"""The one module that reaches into MLflow below its public API, and why each use is needed.

- Name validators (`_validate_metric_name`, …): MLflow has no public function that says
  whether it would accept a metric, param or tag name. newsdesk must refuse a bad name in the
  caller's thread, at the call that introduced it, with MLflow's own rules; re-implementing
  them would drift from what the store actually refuses.
- Batch limits (`MAX_METRICS_PER_BATCH`, …): the limits of `log_batch` live in
  `mlflow.utils.validation`, which MLflow does not document as public.
- `SqlAlchemyStore._engine_map`: the shipper is a forked child of the training process, and
  the SQLAlchemy engines it inherits hold the parent's open SQLite/PostgreSQL connections,
  which a child must never use. SQLAlchemy's documented remedy is `engine.dispose(close=False)`
  in the child; MLflow keeps its engines in this class attribute and offers no public way to
  reach them. (Its HTTP sessions are already keyed by process id.)
- `insert_metrics`, the shipper's write of metric points into a database-backed store: what
  `SqlAlchemyStore.log_batch` does for metrics (the same rows in `metrics` and
  `latest_metrics`, the same sanitising of NaN and infinities, duplicates of a point already
  stored ignored, a deleted or unknown run refused), in two bulk statements instead of one
  ORM object per point. MLflow's path costs several times the CPU per point; on a small
  machine that CPU is taken from the training loop (docs/benchmarks.md).
  `tests/tracker/test_mlflow_internals.py` stores the same points both ways and compares
  every history and latest value.
- The `metrics` and `runs` tables: `metric_history` reads a run's points in one SQL query
  instead of building one MLflow entity per point (several times faster on a long
  history, see docs/benchmarks.md); the query names the columns of MLflow's database schema.

An MLflow upgrade that moves any of these fails here, at import, with one line naming the
MLflow version, and `tests/tracker/test_mlflow_internals.py` checks their behaviour, so the
breakage is loud and in one place. newsdesk is tested with the versions in `constraints.txt`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import mlflow

try:
    from mlflow.utils.validation import (
        MAX_ENTITIES_PER_BATCH,
        MAX_ENTITY_KEY_LENGTH,
        MAX_METRICS_PER_BATCH,
        MAX_PARAM_VAL_LENGTH,
        MAX_PARAMS_TAGS_PER_BATCH,
        _validate_metric_name,
        _validate_param_name,
        _validate_tag_name,
    )
except ImportError as exc:  # pragma: no cover - only on an MLflow that moved them
    raise ImportError(
        f"newsdesk needs MLflow's name validators and batch limits from "
        f"mlflow.utils.validation, which MLflow {mlflow.__version__} does not provide ({exc}); "
        "install the MLflow version pinned in constraints.txt"
    ) from exc

__all__ = [
    "MAX_ENTITIES_PER_BATCH",
    "MAX_ENTITY_KEY_LENGTH",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "MAX_PARAM_VAL_LENGTH",
    "METRIC_HISTORY_SQL",
    "NAME_VALIDATORS",
    "as_active_run",
    "forget_inherited_connections",
    "insert_metrics",
    "sql_engine",
]

# kind -> a function that raises `MlflowException` for a name the store would refuse.
NAME_VALIDATORS: dict[str, Callable[[str], None]] = {
    "metric": _validate_metric_name,
    "param": _validate_param_name,
    "tag": _validate_tag_name,
}

# Every point of the given runs and keys, with the run's name; `is_nan` marks NaN values,
# which MLflow stores as 0 with the flag set. Bind `run_ids` and `keys` as expanding lists.
METRIC_HISTORY_SQL = (
    "SELECT m.run_uuid AS run_id, r.name AS run_name, m.key AS key, m.step AS step, "
    "m.value AS value, m.is_nan AS is_nan, m.timestamp AS timestamp "
    "FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
    "WHERE m.run_uuid IN :run_ids AND m.key IN :keys"
)


def forget_inherited_connections() -> None:
    """In a forked child: drop the connection pools inherited from the parent without closing
    the parent's connections, so that the child opens its own."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for engine in list(getattr(SqlAlchemyStore, "_engine_map", {}).values()):
        engine.dispose(close=False)


def sql_engine(client: Any) -> Any | None:
    """The SQLAlchemy engine behind an `MlflowClient` whose tracking store is a database
    (SQLite, PostgreSQL, MySQL); None for a tracking server or any other store."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store
    if not isinstance(store, SqlAlchemyStore):
        return None
    if store.engine.dialect.name not in _UPSERT_DIALECTS:
        return None
    return store.engine


_UPSERT_DIALECTS = ("sqlite", "postgresql", "mysql")
_MAX_FLOAT = 1.7976931348623157e308


def _sanitize(value: float) -> tuple[float, bool]:
    """MLflow's `sanitize_metric_value`: NaN is stored as 0 with `is_nan`, ±inf as ±max."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (_MAX_FLOAT if value > 0 else -_MAX_FLOAT), False
    return value, False


def _insert_ignoring_duplicates(engine: Any, table: Any) -> Any:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        return insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(table).on_conflict_do_nothing()
    from sqlalchemy import insert

    return insert(table).prefix_with("IGNORE")


def insert_metrics(engine: Any, run_id: str, points: Sequence[tuple[str, float, int, int]]) -> None:
    """Store metric points `(key, value, timestamp, step)` of `run_id` as `log_batch` would."""
    import sqlalchemy as sa
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun

    rows: dict[tuple, dict] = {}
    for key, raw, ts, step in points:
        value, is_nan = _sanitize(float(raw))
        row = {"key": key, "value": value, "timestamp": ts, "step": step, "is_nan": is_nan}
        rows.setdefault((key, ts, step, value, is_nan), {**row, "run_uuid": run_id})
    latest: dict[str, dict] = {}
    for row in rows.values():
        best = latest.get(row["key"])
        order = (row["step"], row["timestamp"], row["value"])
        if best is None or order > (best["step"], best["timestamp"], best["value"]):
            latest[row["key"]] = row
    runs, metrics, latest_table = SqlRun.__table__, SqlMetric.__table__, SqlLatestMetric.__table__
    with engine.begin() as conn:
        stage = conn.execute(
            sa.select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id)
        ).scalar_one_or_none()
        if stage is None:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
        if stage != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"The run {run_id} must be in the 'active' state. Current state is {stage}.",
                INVALID_PARAMETER_VALUE,
            )
        if rows:
            conn.execute(_insert_ignoring_duplicates(engine, metrics), list(rows.values()))
        if not latest:
            return
        query = sa.select(latest_table).where(
            latest_table.c.run_uuid == run_id, latest_table.c.key.in_(sorted(latest))
        )
        if engine.dialect.name != "sqlite":
            query = query.with_for_update()
        stored = {r.key: r for r in conn.execute(query)}
        for key in sorted(latest):
            new = latest[key]
            old = stored.get(key)
            values = {k: new[k] for k in ("value", "timestamp", "step", "is_nan")}
            if old is None:
                conn.execute(sa.insert(latest_table), {**values, "key": key, "run_uuid": run_id})
            elif (new["step"], new["timestamp"], new["value"]) > (
                old.step,
                old.timestamp,
                old.value,
            ):
                conn.execute(
                    sa.update(latest_table)
                    .where(latest_table.c.run_uuid == run_id, latest_table.c.key == key)
                    .values(**values)
                )


@contextlib.contextmanager
def as_active_run(run: Any, tracking_uri: str) -> Iterator[None]:
    """Make `run` (an `mlflow.entities.Run` of the store at `tracking_uri`) MLflow's active
    run in this thread, and that store MLflow's tracking URI, until the block ends; then
    both are as they were, and the run is not ended (its logger ends it)."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils as tracking_utils

    stack = fluent._active_run_stack.get()
    active = fluent.ActiveRun(run)
    saved_uri = tracking_utils._tracking_uri
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    stack.append(active)
    try:
        yield
    finally:
        for index in range(len(stack) - 1, -1, -1):
            if stack[index] is active:
                del stack[index]
                break
        tracking_utils.set_tracking_uri(saved_uri)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
