"""MLflow's conventions for where a run goes, read the way `mlflow.start_run` reads them.

A user coming from MLflow sets `MLFLOW_EXPERIMENT_NAME`, `MLFLOW_RUN_ID` or
`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`, or opens the logger inside their own
`mlflow.start_run()`; the command line and the Hugging Face callback honour these, so the
Python API does too. What the caller passes explicitly always wins.

Order, as in MLflow: the experiment is the argument, else the experiment of the run being
continued, else `MLFLOW_EXPERIMENT_NAME`, else `MLFLOW_EXPERIMENT_ID`, else the experiment of
the active MLflow run, else "newsdesk" (the command line's default, so `newsdesk compare`
finds the run). `MLFLOW_RUN_ID` is taken once, as `mlflow.start_run` takes it (it is removed
from the environment, so a second logger in the same process makes its own run). An active
MLflow run in the caller's thread becomes the parent of a new run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from tracker.schema import DEFAULT_EXPERIMENT

EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
RUN_ID_ENV = "MLFLOW_RUN_ID"
SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
SYSTEM_METRICS_INTERVAL_ENV = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"


@dataclass(frozen=True)
class RunTarget:
    """Where a `TrainingLogger` logs: an experiment, and a run to continue or to nest under."""

    experiment: str
    run_id: str | None
    parent_run_id: str | None
    system_metrics_interval_s: float


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def system_metrics_interval(
    given: float | None, environ: MutableMapping[str, str] | None = None
) -> float:
    """The sampling interval: the argument, else MLflow's switch and interval, else off."""
    env = os.environ if environ is None else environ
    if given is not None:
        return given
    if not _truthy(env.get(SYSTEM_METRICS_ENV)):
        return 0.0
    from tracker.logger.system_metrics import DEFAULT_INTERVAL_S

    raw = env.get(SYSTEM_METRICS_INTERVAL_ENV)
    try:
        return float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        raise ValueError(
            f"{SYSTEM_METRICS_INTERVAL_ENV}={raw!r} is not a number of seconds"
        ) from None


def resolve_target(
    client: Any,
    *,
    experiment: str | None,
    run_id: str | None,
    parent_run_id: str | None,
    system_metrics_interval_s: float | None,
    environ: MutableMapping[str, str] | None = None,
) -> RunTarget:
    """Fill in what the caller left out from MLflow's environment variables and active run."""
    env = os.environ if environ is None else environ
    if run_id is None and env.get(RUN_ID_ENV):
        run_id = env.pop(RUN_ID_ENV)
    active = _active_run_here(client)
    if experiment is None:
        experiment = _experiment_from(client, env, run_id, active)
    if run_id is None and parent_run_id is None and active is not None:
        parent_run_id = active.info.run_id
    return RunTarget(
        experiment, run_id, parent_run_id, system_metrics_interval(system_metrics_interval_s, env)
    )


def _active_run_here(client: Any) -> Any | None:
    """MLflow's active run in this thread, as `client`'s store has it; None when there is
    none or it is a run of another store (which cannot be a parent here)."""
    fluent = sys.modules.get("mlflow.tracking.fluent")
    active = fluent.active_run() if fluent is not None else None
    if active is None:
        return None
    try:
        return client.get_run(active.info.run_id)
    except Exception:  # noqa: BLE001 - MlflowException: not a run of this store
        return None


def _experiment_from(
    client: Any, env: MutableMapping[str, str], run_id: str | None, active: Any | None
) -> str:
    if run_id is not None:
        return client.get_experiment(client.get_run(run_id).info.experiment_id).name
    if env.get(EXPERIMENT_NAME_ENV):
        return env[EXPERIMENT_NAME_ENV]
    if env.get(EXPERIMENT_ID_ENV):
        return client.get_experiment(env[EXPERIMENT_ID_ENV]).name
    if active is not None:
        return client.get_experiment(active.info.experiment_id).name
    return DEFAULT_EXPERIMENT
