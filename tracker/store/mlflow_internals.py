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
- The `metrics` and `runs` tables: `metric_history` reads 150,000 points in one SQL query
  instead of building one MLflow entity per point (0.6 s against 4 s); the query names the
  columns of MLflow's database schema.

An MLflow upgrade that moves any of these fails here, at import, with one line naming the
MLflow version, and `tests/tracker/test_mlflow_internals.py` checks their behaviour, so the
breakage is loud and in one place. newsdesk is tested with the versions in `constraints.txt`.
"""

from __future__ import annotations

from collections.abc import Callable

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
    "forget_inherited_connections",
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
