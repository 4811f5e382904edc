"""`TrainingLogger`: the MLflow-backed training log.

It holds an `MlflowClient` and an explicit run id (never the global active run), so several
loggers can be open in one process. Metrics, params and tags are appended to the run's
write-ahead log on local disk (`tracker.logger.wal`) and a shipper process forked when the
logger opens (`tracker.logger.shipper`) writes them to the store: the loop pays one `os.write`
per call, a SIGKILL loses nothing the loop handed over, and the training process holds no
queue that grows while the store is down. Artifacts are written directly: they are logged a
few times per run, never per batch.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

import yaml
from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from tracker.interface import RunStatus, TerminatedBySignal, status_on_exit
from tracker.interrupts import redeliver_swallowed_interrupts
from tracker.logger.datasets import log_dataset_input
from tracker.logger.params import to_param_values
from tracker.logger.run_tags import system_tags
from tracker.logger.shipper import WAKE_SIGNAL, start_shipper
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
from tracker.logger.wal import (
    RunMeta,
    ShipState,
    WalWriter,
    artifact_line,
    disk_bytes,
    json_line,
    metrics_line,
    read_state,
    staged_uploads,
    unshipped_points,
    wal_dir,
)
from tracker.logger.writer import WriterConfig
from tracker.schema import PARENT_RUN_TAG, RUN_KEY_TAG
from tracker.store.experiments import ensure_experiment
from tracker.store.location import StoreLocation, default_spool_dir, resolve_store

_log = logging.getLogger(__name__)


class TrainingLogger:
    """Streams metrics, params, tags and artifacts of one training run into MLflow.

    Usage::

        with TrainingLogger("thucnews", run_name="lstm", params={"model": {"hidden": 128}}) as log:
            log.log_metrics({"train/loss": 0.9}, step=1)   # returns at once
        TrainingLogger("thucnews", run_id=log.run_id)       # resume and append

    Leaving the `with` block flushes and ends the run FINISHED, FAILED on an exception, KILLED on
    KeyboardInterrupt or SIGTERM. What the store would not take before closing stays in the
    run's log on disk for `newsdesk sync`. With `parent_run_id`, the new run is nested under
    that run (a sweep's trial under the sweep). With `system_metrics_interval_s` > 0, MLflow's
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
        self._redelivery: AbstractContextManager[None] | None = None
        self.spool_path: Path | None = None
        if run_id is None:
            if parent_run_id is not None:
                # MLflow's own nesting tag: the UI shows the run under its parent.
                tags = {**(tags or {}), PARENT_RUN_TAG: parent_run_id}
            self.run_id = self._create_run(experiment, run_name, tags)
        else:
            self.run_id = self._resume_run(experiment, run_id, tags)
        self._final_state: ShipState | None = None
        # Whether the last `flush` timed out: the store has then had its patience already.
        self._store_unanswered = False
        self._wal_dir = wal_dir(self._spool_dir, self.run_id)
        meta = RunMeta(self.location.tracking_uri, self.run_id, os.getpid())
        self._wal = WalWriter(self._wal_dir, meta, self._config.segment_bytes)
        self._shipper_pid = start_shipper(self._wal_dir, self.location.tracking_uri, self._config)
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
            # Raised inside a garbage-collector callback, the interrupt would be lost.
            self._redelivery = redeliver_swallowed_interrupts()
            self._redelivery.__enter__()
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
        if self._redelivery is not None:
            self._redelivery.__exit__(None, None, None)
            self._redelivery = None
        self.close(status_on_exit(exc_type))

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Append the terminal status to the log and wait for the shipper to store it all;
        what the store would not take stays in the log for `newsdesk sync`."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        status = RunStatus(status)
        try:
            stop_system_metrics(self._system_monitor)
        except Exception as exc:  # noqa: BLE001 - the run still ends; the samples are extras
            _log.warning("system metrics of run %s not written: %s", self.run_id, exc)
        end_time = int(time.time() * 1000)
        self._wal.write(json_line({"t": "s", "status": status.value, "end_time": end_time}))
        self._wal.close()
        failures = read_state(self._wal_dir).failures  # before the wakeup: see below
        self._wake_shipper()
        state = self._final_state = self._wait_for_shipper(failures)
        self._report_rejected(state)
        if state.done:
            shutil.rmtree(self._wal_dir, ignore_errors=True)
            return
        self._report_leftover(state)

    def _wait_for_shipper(self, failures: int) -> ShipState:
        """Until the shipper exits, or has made no progress for `close_timeout_s` (then it is
        stopped; its acknowledged positions are on disk).

        After a `flush` that timed out, the store has had that patience already: the close
        then also stops when two more of the shipper's attempts fail (`failures` is the count
        read before the close woke it, so the second began after the wakeup; each failure
        wakes it again, so no backoff is waited out). Counting attempts rather than seconds
        lets a store that is back by then take everything however slow the machine is, and
        ends the command as soon as the store is seen still down, not `close_timeout_s`
        later."""
        patience = self._config.close_timeout_s
        deadline = time.monotonic() + patience
        seen = None
        quick, woken_at = self._store_unanswered, failures
        while not self._shipper_exited():
            state = read_state(self._wal_dir)
            progress = (state.stored, sum(state.acked.values()))
            if progress != seen:
                if seen is not None:
                    quick = False  # the store took something: the full patience again
                seen = progress
                deadline = time.monotonic() + patience
            elif quick and state.failures >= failures + 2:
                self._stop_shipper()
                break
            elif quick and state.failures > woken_at:
                woken_at = state.failures
                self._wake_shipper()
            elif time.monotonic() >= deadline:
                self._stop_shipper()
                break
            time.sleep(0.01)
        return read_state(self._wal_dir)

    def _stop_shipper(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._shipper_pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._shipper_pid, 0)

    def _wake_shipper(self) -> None:
        """Ask the shipper to read the log now. Only while it is unreaped: its pid cannot
        belong to another process then."""
        if not self._shipper_exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._shipper_pid, WAKE_SIGNAL)

    def _shipper_exited(self) -> bool:
        try:
            pid, _ = os.waitpid(self._shipper_pid, os.WNOHANG)
        except ChildProcessError:
            return True  # reaped elsewhere
        return pid != 0

    def _report_leftover(self, state: ShipState) -> None:
        self.spool_path = self._wal_dir
        count = unshipped_points(self._wal_dir, state)
        uploads = staged_uploads(self._wal_dir)
        also = f" and {uploads} artifact upload(s)" if uploads else ""
        size = disk_bytes(self._wal_dir) / 2**20
        reason = state.last_error or "store unavailable"
        print(
            f"newsdesk: the tracking store did not accept {count} metric points{also} of run "
            f"{self.run_id} ({reason}); kept in {self._wal_dir} ({size:.1f} MiB); "
            f"run 'newsdesk sync' once the store is back",
            file=self._notify,
        )

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

    def _report_rejected(self, state: ShipState) -> None:
        """Entries the store refused for good: the shipper kept them in a file and tagged
        the run; said here on stderr."""
        if not state.rejected:
            return
        print(
            f"newsdesk: the tracking store refused {state.rejected} entries of run "
            f"{self.run_id} ({state.rejected_first}); kept in {state.rejected_path}; "
            "the run ends FAILED",
            file=self._notify,
        )

    # ----- logging ----------------------------------------------------------------------------
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
        for key in items:
            validate_param_name(key)
        if items:
            self._wal.write(json_line({"t": "p", "items": items}))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._refuse_in_forked_child()
        for key in tags:
            validate_tag_name(key)
        if tags:
            self._wal.write(json_line({"t": "g", "items": {k: str(v) for k, v in tags.items()}}))

    # Artifacts go through the log like everything else: the files are copied into it (a
    # local disk copy) and the shipper uploads them in order, so an upload never blocks the
    # loop on the store, and a store that is down keeps them for `sync` with the points.
    # After `close` (no shipper any more) they are uploaded at once.
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._refuse_in_forked_child()
        if artifact_path is not None:
            artifact_path = validate_artifact_path(artifact_path)
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"artifact {source} does not exist")
        if self._closed:
            if source.is_dir():
                self.client.log_artifacts(self.run_id, str(source), artifact_path)
            else:
                self.client.log_artifact(self.run_id, str(source), artifact_path)
            return
        folder = self._wal.stage()
        if source.is_dir():
            shutil.copytree(source, folder, dirs_exist_ok=True)
        else:
            shutil.copy2(source, folder / source.name)
        self._wal.write(artifact_line(folder, artifact_path))

    @contextlib.contextmanager
    def _new_artifact(self, artifact_file: str) -> Iterator[Path]:
        """A path to write `artifact_file` to: straight into a staged folder of the run's log
        (no second copy), or, after `close`, a temporary file uploaded at once."""
        artifact_file = validate_artifact_path(artifact_file)
        name, parent = Path(artifact_file).name, _parent_or_none(artifact_file)
        if self._closed:
            self._refuse_in_forked_child()
            with tempfile.TemporaryDirectory() as tmp:
                yield Path(tmp) / name
                self.client.log_artifact(self.run_id, str(Path(tmp) / name), parent)
            return
        folder = self._wal.stage()
        yield folder / name
        self._wal.write(artifact_line(folder, parent))

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure as `artifact_file` (its extension picks the format)."""
        with self._new_artifact(artifact_file) as target:
            figure.savefig(target)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Write `dictionary` as JSON (YAML for .yaml/.yml, as MLflow does), non-ASCII text
        left readable in the UI."""
        with self._new_artifact(artifact_file) as target, target.open("w", encoding="utf-8") as fh:
            if target.suffix in (".yaml", ".yml"):
                yaml.safe_dump(dict(dictionary), fh, indent=2, allow_unicode=True, sort_keys=False)
            else:
                json.dump(dictionary, fh, ensure_ascii=False, indent=2, default=str)

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
        if self._closed:
            return self._final_state is not None and self._final_state.done
        segment, end = self._wal.write_marked(json_line({"t": "f"}))
        self._wake_shipper()
        deadline = None if timeout is None else time.monotonic() + timeout
        while read_state(self._wal_dir).acked.get(segment, 0) < end:
            if self._shipper_exited():
                return False
            if deadline is not None and time.monotonic() > deadline:
                self._store_unanswered = True
                return False
            time.sleep(0.005)
        self._store_unanswered = False
        return True

    # ----- introspection ----------------------------------------------------------------------
    @property
    def shipper_state(self) -> ShipState:
        """What the shipper has done so far: points stored, failures, refused entries."""
        return self._final_state or read_state(self._wal_dir)

    @property
    def points_stored(self) -> int:
        return self.shipper_state.stored

    @property
    def rejected(self) -> int:
        """How many entries the store refused for good (kept in the `.rejected` file)."""
        return self.shipper_state.rejected


def _parent_or_none(artifact_file: str) -> str | None:
    parent = str(Path(artifact_file).parent)
    return None if parent == "." else parent


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
