"""The calls a training loop makes, validated at the call and appended to the run's log.

`RunLogWriter` turns `log_metrics`, `log_params`, `set_tags` and the artifact calls into lines
of the run's write-ahead log (`tracker.shipping.wal`): one `os.write` per call, no store
request. `TrainingLogger` builds on it with the run, the shipper and the run's lifecycle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from tracker.logger.artifacts import new_artifact, stage_copy, upload_now, write_dict
from tracker.logger.params import to_param_values
from tracker.logger.singulars import SingularCalls
from tracker.logger.validation import (
    STEP_MAX,
    STEP_MIN,
    metric_values,
    validate_artifact_path,
    validate_metric_name,
    validate_param_name,
    validate_step,
    validate_tag_name,
)
from tracker.shipping.wal import json_line, metrics_line
from tracker.shipping.writer import WalWriter


class RunLogWriter(SingularCalls):
    """Appends what the loop hands over to `wal`, the log of run `run_id`.

    After `close` (`_closed`), metrics are refused and artifacts are uploaded at once
    through `client`; in a forked child (`_parent_pid` set) every call is refused with a
    message that says why.
    """

    def __init__(self, client: MlflowClient, run_id: str, wal: WalWriter) -> None:
        self.client = client
        self.run_id = run_id
        self._wal = wal
        self._known_names: set[str] = set()
        self._params: dict[str, str] = {}  # logged through this writer
        self._closed = False
        # Set in a forked child to the process that owns the run.
        self._parent_pid: int | None = None

    def _refuse_in_forked_child(self) -> None:
        if self._parent_pid is not None:
            raise RuntimeError(self._closed_message())

    def _closed_message(self) -> str:
        if self._parent_pid is None:
            return f"logger for run {self.run_id} is closed"
        return (
            f"logger for run {self.run_id} belongs to process {self._parent_pid}; this forked "
            "child (a DataLoader worker?) cannot log through it: return values to the parent, "
            "or open a TrainingLogger with run_id=... in the child"
        )

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        """Validate and append one line to the run's log; returns without touching the store.

        The timestamp is taken here, in the caller's thread, so the point is the same point
        however often it has to be sent.
        """
        if self._closed:
            raise RuntimeError(self._closed_message())
        if type(step) is not int or not STEP_MIN <= step <= STEP_MAX:
            step = validate_step(step)
        known = self._known_names
        pairs = []
        try:
            for key, value in metrics.items():
                if key not in known:
                    validate_metric_name(key)
                    known.add(key)
                if isinstance(value, (str, bytes)):  # float("0.5") would pass
                    raise TypeError
                pairs.append((key, float(value)))
        except (TypeError, ValueError):
            metric_values(metrics)  # raises the ValueError that names the metric, if a value
            raise  # else the refused name
        if pairs:
            self._wal.write(metrics_line(int(time.time() * 1000), step, pairs))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (nested) params as dotted keys; they are written in the background."""
        self._refuse_in_forked_child()
        items = to_param_values(params)
        for key, value in items.items():
            validate_param_name(key)
            earlier = self._params.get(key, value)
            if earlier != value:
                raise ValueError(
                    f"param {key!r} of run {self.run_id} was logged as {earlier!r}; a run's "
                    f"params do not change in MLflow, so {value!r} is refused (log it under "
                    "another name, or as a tag)"
                )
        if items:
            self._wal.write(json_line({"t": "p", "items": items}))
            self._params.update(items)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._refuse_in_forked_child()
        for key in tags:
            validate_tag_name(key)
        if tags:
            self._wal.write(json_line({"t": "g", "items": {k: str(v) for k, v in tags.items()}}))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a file or folder into the run's log; the shipper uploads it in order with the
        points (see `tracker.logger.artifacts`)."""
        self._refuse_in_forked_child()
        if artifact_path is not None:
            artifact_path = validate_artifact_path(artifact_path)
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"artifact {source} does not exist")
        if self._closed:
            upload_now(self.client, self.run_id, source, artifact_path)
        else:
            stage_copy(self._wal, source, artifact_path)

    def _new_artifact(self, artifact_file: str) -> AbstractContextManager[Path]:
        artifact_file = validate_artifact_path(artifact_file)
        if self._closed:
            self._refuse_in_forked_child()
        wal = None if self._closed else self._wal
        return new_artifact(wal, self.client, self.run_id, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure as `artifact_file` (its extension picks the format)."""
        with self._new_artifact(artifact_file) as target:
            figure.savefig(target)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Write `dictionary` as JSON, or YAML for .yaml/.yml, as MLflow does."""
        with self._new_artifact(artifact_file) as target:
            write_dict(dictionary, target)
