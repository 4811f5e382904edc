"""`TrainingLogger`: the MLflow-backed training log.

It holds an `MlflowClient` and an explicit run id (never the global active run), so several
loggers can be open in one process. Metrics go through a `BackgroundWriter`; params and tags
too, so that nothing the loop hands over blocks on the store. Artifacts are written directly:
they are logged a few times per run, never per batch.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.tracking import MlflowClient

from tracker.interface import RunStatus, TerminatedBySignal, status_on_exit
from tracker.logger.datasets import log_dataset_input
from tracker.logger.params import to_param_values
from tracker.logger.run_tags import system_tags
from tracker.logger.spool import SpoolContent, write_rejected, write_spool
from tracker.logger.system_metrics import start_system_metrics, stop_system_metrics
from tracker.logger.text_model import log_text_model
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
from tracker.logger.writer import (
    BackgroundWriter,
    Batch,
    MetricPoint,
    ParamItem,
    TagItem,
    WriterConfig,
)
from tracker.schema import PARENT_RUN_TAG, REJECTED_TAG, RUN_KEY_TAG
from tracker.store.experiments import ensure_experiment
from tracker.store.location import StoreLocation, default_spool_dir, resolve_store

_log = logging.getLogger(__name__)


def make_sender(client: MlflowClient, run_id: str):
    """A `Sender` that writes one batch to `run_id` through `client.log_batch`."""

    def send(metrics, params: dict[str, str], tags: dict[str, str]) -> None:
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )

    return send


class TrainingLogger:
    """Streams metrics, params, tags and artifacts of one training run into MLflow.

    Usage::

        with TrainingLogger("thucnews", run_name="lstm", params={"model": {"hidden": 128}}) as log:
            log.log_metrics({"train/loss": 0.9}, step=1)   # returns at once
        TrainingLogger("thucnews", run_id=log.run_id)       # resume and append

    Leaving the `with` block flushes and ends the run FINISHED, FAILED on an exception, KILLED on
    KeyboardInterrupt or SIGTERM. Points the store would not take before closing are spooled
    to disk for `newsdesk sync`. With `parent_run_id`, the new run is nested under that run
    (a sweep's trial under the sweep). With `system_metrics_interval_s` > 0, MLflow's
    system-metrics monitor samples CPU, memory, disk and network into `system/*` metrics.
    """

    def __init__(
        self,
        experiment: str,
        *,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        writer_config: WriterConfig | None = None,
        spool_dir: Path | None = None,
        notify: TextIO | None = None,
        parent_run_id: str | None = None,
        system_metrics_interval_s: float = 0.0,
    ) -> None:
        self.location: StoreLocation = resolve_store(tracking_uri)
        self.client = MlflowClient(tracking_uri=self.location.tracking_uri)
        self.experiment_name = experiment
        self._config = writer_config or WriterConfig()
        self._spool_dir = spool_dir or default_spool_dir(self.location)
        self._notify = notify if notify is not None else sys.stderr
        self._known_names: set[str] = set()
        self._closed = False
        # Set in a forked child to the process that owns the run (see `_disowner`).
        self._parent_pid: int | None = None
        self._previous_sigterm: Any = None
        self.spool_path: Path | None = None
        if run_id is None:
            if parent_run_id is not None:
                # MLflow's own nesting tag: the UI shows the run under its parent.
                tags = {**(tags or {}), PARENT_RUN_TAG: parent_run_id}
            self.run_id = self._create_run(experiment, run_name, tags)
        else:
            self.run_id = self._resume_run(experiment, run_id, tags)
        self._writer = BackgroundWriter(make_sender(self.client, self.run_id), self._config)
        self._system_monitor = start_system_metrics(
            self.location.tracking_uri, self.run_id, system_metrics_interval_s
        )
        # A logger left open (a notebook, an exit path without `close`) still stores every
        # point and ends its run when the interpreter exits.
        atexit.register(self._close_at_exit)
        os.register_at_fork(after_in_child=_disowner(weakref.ref(self)))
        if params:
            self.log_params(params)

    # ----- run lifecycle ----------------------------------------------------------------------
    def _create_run(
        self, experiment: str, run_name: str | None, tags: Mapping[str, Any] | None
    ) -> str:
        experiment_id = ensure_experiment(self.client, experiment, self.location.artifact_root)
        all_tags = system_tags()
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        for key in all_tags:
            validate_tag_name(key)
        run_key = uuid.uuid4().hex
        all_tags[RUN_KEY_TAG] = run_key
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        self._drop_duplicate_creates(experiment_id, run.info.run_id, run_key)
        return run.info.run_id

    def _drop_duplicate_creates(self, experiment_id: str, run_id: str, run_key: str) -> None:
        """MLflow's HTTP client sends a POST again when its response was lost, and the server
        then made the run twice. The run key (a tag chosen here, before the request) finds
        every copy; the one we were given is kept, the others, which hold nothing but their
        tags, are ended and deleted so that no orphan stays RUNNING."""
        if not self.location.tracking_uri.startswith(("http://", "https://")):
            return  # an embedded store makes exactly one run per call
        copies = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
            run_view_type=ViewType.ALL,
        )
        for copy in copies:
            if copy.info.run_id != run_id:
                self.client.set_terminated(copy.info.run_id, status=RunStatus.KILLED.value)
                self.client.delete_run(copy.info.run_id)

    def _resume_run(self, experiment: str, run_id: str, tags: Mapping[str, Any] | None) -> str:
        run = self.client.get_run(run_id)
        exp = self.client.get_experiment(run.info.experiment_id)
        if exp.name != experiment:
            raise ValueError(f"run {run_id} belongs to experiment {exp.name!r}, not {experiment!r}")
        if run.info.status != MlflowRunStatus.to_string(MlflowRunStatus.RUNNING):
            self.client.update_run(run_id, status="RUNNING")
        for key, value in (tags or {}).items():
            validate_tag_name(key)
            self.client.set_tag(run_id, key, str(value))
        return run_id

    def __enter__(self) -> TrainingLogger:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    @staticmethod
    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise TerminatedBySignal(signum)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        self.close(status_on_exit(exc_type))

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Flush, then end the run with `status`; spool what the store would not take."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        status = RunStatus(status)
        try:
            stop_system_metrics(self._system_monitor)
        except Exception as exc:  # noqa: BLE001 - the run still ends; the samples are extras
            _log.warning("system metrics of run %s not written: %s", self.run_id, exc)
        leftover = self._writer.close(self._config.close_timeout_s)
        if self._writer.rejected and status is RunStatus.FINISHED:
            status = RunStatus.FAILED  # not cleanly finished: part of what it logged is missing
        self._report_rejected()
        end_time = int(time.time() * 1000)
        if len(leftover) == 0 and self._terminate(status, end_time):
            return
        self._spool(leftover, status, end_time)

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

    def _close_at_exit(self) -> None:
        """The interpreter is exiting and this logger was never closed: store what is queued
        and end the run, FAILED (KILLED after Ctrl-C) when the program died of an uncaught
        exception, FINISHED otherwise."""
        self.close(status_on_exit(getattr(sys, "last_type", None)))

    def _report_rejected(self) -> None:
        """Entries the store refused for good: kept in a file, said on stderr, tagged."""
        rejected = self._writer.rejected
        if not rejected:
            return
        count = sum(len(batch) for batch, _ in rejected)
        path = write_rejected(self._spool_dir, self.run_id, rejected)
        first = rejected[0][1].splitlines()[0][:200]
        print(
            f"newsdesk: the tracking store refused {count} entries of run {self.run_id} "
            f"({first}); kept in {path}; the run ends FAILED",
            file=self._notify,
        )
        try:
            self.client.set_tag(self.run_id, REJECTED_TAG, f"{count} entries: {first}")
        except Exception as exc:  # noqa: BLE001 - the file and the message still say it
            _log.warning("could not tag run %s: %s", self.run_id, exc)

    def _terminate(self, status: RunStatus, end_time: int) -> bool:
        try:
            self.client.set_terminated(self.run_id, status=status.value, end_time=end_time)
        except Exception as exc:  # noqa: BLE001 - the status is spooled instead of lost
            _log.warning("could not end run %s: %s", self.run_id, exc)
            return False
        return True

    def _spool(self, leftover: Batch, status: RunStatus, end_time: int) -> None:
        content = SpoolContent(
            tracking_uri=self.location.tracking_uri,
            run_id=self.run_id,
            batch=leftover,
            status=status.value,
            end_time=end_time,
        )
        self.spool_path = write_spool(self._spool_dir, content)
        reason = self._writer.last_error or "store unavailable"
        print(
            f"newsdesk: the tracking store did not accept {len(leftover.metrics)} metric points "
            f"of run {self.run_id} ({reason}); saved to {self.spool_path}; "
            f"run 'newsdesk sync' once the store is back",
            file=self._notify,
        )

    # ----- logging ----------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        """Validate and enqueue; returns without touching the store.

        The timestamp is taken here, in the caller's thread, so the point is the same point
        however often the writer has to send it.
        """
        if self._closed:
            raise RuntimeError(self._closed_message())
        if type(step) is not int or not STEP_MIN <= step <= STEP_MAX:
            step = validate_step(step)
        known = self._known_names
        ts = int(time.time() * 1000)
        points: list[MetricPoint] = []
        try:
            for key, value in metrics.items():
                if key not in known:
                    validate_metric_name(key)
                    known.add(key)
                if isinstance(value, (str, bytes)):  # float("0.5") would pass
                    raise TypeError
                points.append((key, float(value), ts, step))
        except (TypeError, ValueError):
            metric_values(metrics)  # raises the ValueError that names the metric, if a value
            raise  # else the refused name
        self._writer.put_metrics(points)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (nested) params as dotted keys; they are written in the background."""
        self._refuse_in_forked_child()
        for key, value in to_param_values(params).items():
            validate_param_name(key)
            self._writer.put(ParamItem(key, value))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._refuse_in_forked_child()
        for key, value in tags.items():
            validate_tag_name(key)
            self._writer.put(TagItem(key, str(value)))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if artifact_path is not None:
            artifact_path = validate_artifact_path(artifact_path)
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"artifact {source} does not exist")
        if source.is_dir():
            self.client.log_artifacts(self.run_id, str(source), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(source), artifact_path)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(self.run_id, figure, validate_artifact_path(artifact_file))

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        artifact_file = validate_artifact_path(artifact_file)
        if artifact_file.endswith(".json"):
            # Written by hand so that non-ASCII label names stay readable in the UI.
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / Path(artifact_file).name
                target.write_text(
                    json.dumps(dictionary, ensure_ascii=False, indent=2), encoding="utf-8"
                )
                parent = str(Path(artifact_file).parent)
                self.client.log_artifact(
                    self.run_id, str(target), None if parent == "." else parent
                )
        else:
            self.client.log_dict(self.run_id, dict(dictionary), artifact_file)

    def log_model(self, model: Any, name: str, **kwargs: Any) -> str | None:
        """Log checkpoint `model` as a pyfunc model of this run; returns the model URI.

        The run's params are flushed first (with the close deadline): the LoggedModel copies
        them.
        """
        if not self.flush(timeout=self._config.close_timeout_s):
            raise TimeoutError(
                f"the tracking store did not store the params of run {self.run_id} within "
                f"{self._config.close_timeout_s:.0f}s; the model was not logged"
            )
        return log_text_model(self.client, self.run_id, Path(model), name, **kwargs)

    def log_input(
        self, name: str, *, context: str, digest: str, source: str, num_rows: int
    ) -> None:
        """Log a dataset input of the run (`mlflow.log_input` for an explicit run): `digest`
        is the caller's hash of the data, `source` the file or URI it was read from, and
        `context` its role (train, dev, test)."""
        log_dataset_input(self.client, self.run_id, name, context, digest, source, num_rows)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every point handed over so far is stored (or `timeout` passes)."""
        return self._writer.flush(timeout)

    # ----- introspection ----------------------------------------------------------------------
    @property
    def points_stored(self) -> int:
        return self._writer.stored

    @property
    def rejected(self) -> list[tuple[Batch, str]]:
        return self._writer.rejected


def _disowner(ref: weakref.ref) -> Callable[[], None]:
    """For `os.register_at_fork`: in a forked child (a DataLoader worker, say) the logger's
    writer thread does not exist, so points logged there would vanish. The child's copy is
    closed without touching the run: its first call fails with a message that says why, and
    its exit does not end the parent's run."""

    def disown() -> None:
        logger = ref()
        if logger is not None and not logger._closed:
            logger._closed = True
            logger._parent_pid = os.getppid()
            atexit.unregister(logger._close_at_exit)

    return disown
