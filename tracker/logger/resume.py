"""Continuing a run after its process died: where it stands, and no point logged twice.

After a crash the store holds, per metric key, a prefix of what the dead process handed over
(the shipper sends the log in order). Training resumes from its last checkpoint, which is at or
before that point, and recomputes the steps in between; `SkipLogged` drops the points the store
already has, so each key's history has no gap and no duplicate across the restart. This is the
store's side of a resume; the training's side (the checkpoint) is `trainers.state`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.tracking import MlflowClient

from tracker.schema import RESUME_CHECKPOINT_TAG
from tracker.shipping.sync import sync_spools
from tracker.store.location import default_spool_dir, resolve_store


@dataclass(frozen=True)
class ResumableRun:
    run_id: str
    experiment: str
    status: str
    tags: dict[str, str]

    @property
    def checkpoint(self) -> str | None:
        return self.tags.get(RESUME_CHECKPOINT_TAG)


def find_resumable_run(run_id: str, tracking_uri: str | None = None) -> ResumableRun:
    """The run to resume; ValueError (one line) when it is unknown or already FINISHED."""
    client = MlflowClient(tracking_uri=resolve_store(tracking_uri).tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for an unknown id
        raise ValueError(f"no run {run_id!r} in the tracking store") from exc
    status = run.info.status
    if status == MlflowRunStatus.to_string(MlflowRunStatus.FINISHED):
        raise ValueError(f"run {run_id} is already FINISHED; there is nothing to resume")
    experiment = client.get_experiment(run.info.experiment_id).name
    return ResumableRun(run_id, experiment, status, dict(run.data.tags))


def last_logged_steps(
    run_id: str, keys: Iterable[str], tracking_uri: str | None = None
) -> dict[str, int]:
    """The highest step stored for each key (keys with no point are left out)."""
    client = MlflowClient(tracking_uri=resolve_store(tracking_uri).tracking_uri)
    last = {}
    for key in keys:
        history = client.get_metric_history(run_id, key)
        if history:
            last[key] = max(m.step for m in history)
    return last


@dataclass
class StoredProgress:
    """How far the store holds a run's metrics, after what its last process logged shipped."""

    last_steps: dict[str, int]
    # What the shipping said (damaged files set aside, points shipped), one line each.
    notes: list[str] = field(default_factory=list)


def stored_progress(
    run_id: str, keys: Iterable[str], tracking_uri: str | None = None
) -> StoredProgress:
    """Ship what the interrupted process logged for `run_id`, then read the last stored step
    of each key. Shipping first matters: otherwise the resumed run logs those steps again,
    and a later `sync` stores them a second time."""
    directory = default_spool_dir(resolve_store(tracking_uri))
    report = sync_spools(directory, tracking_uri, run_id=run_id)
    notes = list(report.set_aside)
    if report.files:
        notes.append(
            f"shipped {report.points} spooled metric points of run {run_id} "
            f"from {len(report.files)} spool file(s) before resuming"
        )
    return StoredProgress(last_logged_steps(run_id, keys, tracking_uri), notes)


class SkipLogged:
    """A `MetricLogger` wrapper that drops points at or before a key's last stored step."""

    def __init__(self, inner: Any, last_steps: Mapping[str, int]) -> None:
        self._inner = inner
        self._last = dict(last_steps)
        self.skipped = 0

    @property
    def run_id(self) -> str:
        return self._inner.run_id

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        last = self._last
        if last:
            kept = {k: v for k, v in metrics.items() if step > last.get(k, -1)}
            self.skipped += len(metrics) - len(kept)
            if not kept:
                return
            metrics = kept
        self._inner.log_metrics(metrics, step=step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
