"""`TrainingLogger`: the MLflow-backed training log.

It holds an `MlflowClient` and an explicit run id (never the global active run), so several
loggers can be open in one process. Metrics, params, tags and artifact copies are appended to
the run's write-ahead log on local disk (`tracker.shipping.wal`) and a shipper process forked
when the logger opens (`tracker.shipping.live`) writes them to the store: the loop pays one
`os.write` per call, a SIGKILL loses nothing the loop handed over, and the training process
holds no queue that grows while the store is down.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import time
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from mlflow.tracking import MlflowClient

from tracker.interface import RunStatus, status_on_exit
from tracker.interrupts import sigterm_as_interrupt
from tracker.logger.conventions import resolve_target
from tracker.logger.datasets import log_dataset_input
from tracker.logger.ownership import disowner, refuse_a_run_open_elsewhere
from tracker.logger.run_end import end_provisionally, end_with_error
from tracker.logger.run_log import RunLogWriter
from tracker.logger.runs import create_run, reopen_run
from tracker.logger.system_metrics import start_system_metrics, stop_system_metrics
from tracker.logger.text_model import log_text_model
from tracker.shipping.config import WriterConfig
from tracker.shipping.handle import (
    ShipperHandle,
    damaged_message,
    leftover_message,
    rejected_message,
)
from tracker.shipping.wal import (
    RunMeta,
    ShipState,
    json_line,
    read_state,
    wal_dir,
)
from tracker.shipping.writer import RunLogError, WalWriter, ensure_writable
from tracker.store.first_contact import check_server
from tracker.store.location import StoreLocation, default_spool_dir, resolve_store
from tracker.store.mlflow_internals import as_active_run

_log = logging.getLogger(__name__)


class TrainingLogger(RunLogWriter):
    """Streams metrics, params, tags and artifacts of one training run into MLflow.

    Usage::

        with TrainingLogger("thucnews", run_name="lstm", params={"model": {"hidden": 128}}) as log:
            log.log_metrics({"train/loss": 0.9}, step=1)   # returns at once
        TrainingLogger("thucnews", run_id=log.run_id)       # resume and append

    Leaving the `with` block flushes and ends the run FINISHED, FAILED on an exception, KILLED
    on KeyboardInterrupt or SIGTERM. What the store would not take before closing stays in the
    run's log on disk for `newsdesk sync` (`spool_path` says where).

    MLflow's conventions hold (`tracker.logger.conventions`): without `experiment`, the run
    goes to `MLFLOW_EXPERIMENT_NAME` (else "newsdesk"); `MLFLOW_RUN_ID` continues that run;
    `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true` samples system metrics; opened inside an
    `mlflow.start_run()` block, the new run is nested under that run. Inside the `with`
    block, `mlflow.active_run()` is this run (and MLflow's tracking URI this store), so
    `mlflow.log_*` calls of other code land in it too; both are restored when it ends.

    Args:
        experiment: MLflow experiment name; created when missing. None: see above.
        run_name: the new run's name (MLflow picks one when None).
        tracking_uri: the store; None means `MLFLOW_TRACKING_URI`, else the embedded SQLite
            store in `mlruns/`.
        params: nested params, logged flattened as dotted keys (`model.hidden`).
        tags: tags of the run (added to an existing run with `run_id`).
        run_id: continue this run (same step axis) instead of creating one; it must belong
            to `experiment`.
        writer_config: tuning of the log and its shipper (`WriterConfig`).
        spool_dir: where the run's log lives (default: `spool/` beside the SQLite store).
        notify: where close-time reports go (default: stderr).
        parent_run_id: nest the new run under this one (a sweep's trial under the sweep).
        system_metrics_interval_s: > 0 samples CPU, memory, disk and network into
            `system/*` metrics this often (MLflow's monitor; needs psutil); 0 does not;
            None follows `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`.

    Raises:
        ValueError: a tag name MLflow would refuse, or `run_id` of another experiment.
        mlflow.exceptions.MlflowException: the store refused to create or find the run.
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        writer_config: WriterConfig | None = None,
        spool_dir: str | Path | None = None,
        notify: TextIO | None = None,
        parent_run_id: str | None = None,
        system_metrics_interval_s: float | None = None,
    ) -> None:
        self.location: StoreLocation = resolve_store(tracking_uri)
        client = MlflowClient(tracking_uri=self.location.tracking_uri)
        target = resolve_target(
            client,
            experiment=experiment,
            run_id=run_id,
            parent_run_id=parent_run_id,
            system_metrics_interval_s=system_metrics_interval_s,
        )
        experiment, run_id, parent_run_id = target.experiment, target.run_id, target.parent_run_id
        self.experiment_name = experiment
        self._as_active_run: AbstractContextManager[None] | None = None
        self._config = writer_config or WriterConfig()
        self._spool_dir = Path(spool_dir) if spool_dir else default_spool_dir(self.location)
        self._notify = notify if notify is not None else sys.stderr
        self._interrupts: AbstractContextManager[None] | None = None
        self.spool_path: Path | None = None
        ensure_writable(self._spool_dir)  # before the run exists: a bad folder leaves none
        check_server(self.location.tracking_uri)  # seconds, not MLflow's minutes of retries
        if run_id is None:
            run_id = create_run(client, self.location, experiment, run_name, tags, parent_run_id)
        else:
            refuse_a_run_open_elsewhere(wal_dir(self._spool_dir, run_id), run_id)
            run_id = reopen_run(client, experiment, run_id, tags)
        self._final_state: ShipState | None = None
        self._wal_dir = wal_dir(self._spool_dir, run_id)
        meta = RunMeta(self.location.tracking_uri, run_id, os.getpid())
        wal = WalWriter(self._wal_dir, meta, self._config.segment_bytes, self._log_recreated)
        super().__init__(client, run_id, wal)
        self._shipper = ShipperHandle(
            self._wal_dir, self.location.tracking_uri, self._config, self._notify
        )
        self._system_monitor = start_system_metrics(
            self.location.tracking_uri, self.run_id, target.system_metrics_interval_s
        )
        # A logger left open (a notebook, an exit path without `close`) still stores every
        # point and ends its run when the interpreter exits.
        atexit.register(self._close_at_exit)
        os.register_at_fork(after_in_child=disowner(weakref.ref(self)))
        if params:
            self.log_params(params)

    def __enter__(self) -> TrainingLogger:
        # SIGTERM inside the block ends the run KILLED, as Ctrl-C does.
        self._interrupts = sigterm_as_interrupt()
        self._interrupts.__enter__()
        # Inside the block the run is MLflow's active run, so that a library's own
        # `mlflow.log_*` calls (autologging, an evaluation helper) reach this run and store.
        # A store that stopped answering since the run was made costs only that.
        try:
            run = self.client.get_run(self.run_id)
        except Exception as exc:  # noqa: BLE001 - the training must not fail on a convenience
            _log.warning("run %s is not MLflow's active run: %s", self.run_id, exc)
        else:
            self._as_active_run = as_active_run(run, self.location.tracking_uri)
            self._as_active_run.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._interrupts is not None:
            self._interrupts.__exit__(None, None, None)
            self._interrupts = None
        if self._as_active_run is not None:
            self._as_active_run.__exit__(None, None, None)
            self._as_active_run = None
        self.close(status_on_exit(exc_type))

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Append the terminal status to the log and wait for the shipper to store it all;
        what the store would not take stays in the log for `newsdesk sync`.

        In a forked child it does nothing: the run is the parent's, and a child leaving a
        `with` block (or exiting) must not end it."""
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
        try:
            self._wal.check()
            self._wal.write(json_line({"t": "s", "status": status.value, "end_time": end_time}))
        except RunLogError as exc:
            self._end_without_the_log(status, end_time, exc)
            return
        self._wal.close()
        state = self._final_state = self._shipper.wait_closed()
        if state.rejected:  # the shipper kept them in a file and tagged the run
            print(rejected_message(state, self.run_id), file=self._notify)
        if state.damaged:
            print(damaged_message(state, self.run_id), file=self._notify)
        if state.done:
            shutil.rmtree(self._wal_dir, ignore_errors=True)
            if status == RunStatus.KILLED:  # the interrupted program's last word names the run
                print(f"newsdesk: run {self.run_id} ended KILLED", file=self._notify)
            return
        self.spool_path = self._wal_dir
        message = leftover_message(self._wal_dir, state, self.run_id, self._shipper.death)
        print(message, file=self._notify)
        if self._shipper.death is not None:
            end_provisionally(
                self.client, self.run_id, end_time, message.removeprefix("newsdesk: ")
            )

    def _end_without_the_log(self, status: RunStatus, end_time: int, error: OSError) -> None:
        """The terminal status could not be appended (the disk is still full): the shipper
        stores what the log holds, then the run is ended here, FAILED (some calls raised and
        were not logged) with the reason as a tag. When the store does not take the rest in
        time, the log is left to `newsdesk sync`, which ends the run once this process is
        gone."""
        segment, end = self._wal.segment, self._wal.size
        self._wal.close()
        stored = self._shipper.wait_flushed(segment, end, self._config.close_timeout_s)
        self._shipper.stop()
        self._final_state = read_state(self._wal_dir)
        if not stored:
            self.spool_path = self._wal_dir
            message = leftover_message(self._wal_dir, self._final_state, self.run_id)
            print(f"{message}; {error}", file=self._notify)
            return
        try:
            status = end_with_error(self.client, self.run_id, status, end_time, error)
        except Exception as exc:  # noqa: BLE001 - the store shares the full disk, say
            self.spool_path = self._wal_dir
            print(
                f"newsdesk: run {self.run_id} could not be ended ({exc}) after: {error}; "
                f"its log is in {self._wal_dir}: run 'newsdesk sync' once there is space",
                file=self._notify,
            )
            return
        shutil.rmtree(self._wal_dir, ignore_errors=True)
        self._final_state.done = True
        print(f"newsdesk: run {self.run_id} ended {status.value}: {error}", file=self._notify)

    def _log_recreated(self, recovered: int) -> None:
        """The log folder was deleted under the open run and the writer made it again: the
        shipper of the old folder goes, a new one ships the recovered segment."""
        self._shipper.restart()
        print(
            f"newsdesk: the log folder {self._wal_dir} of run {self.run_id} was deleted while "
            f"the run was open; made again with the current segment ({recovered} bytes, read "
            "back from the open file), which ships again (the store skips points it has); "
            "lines of older segments the store had not taken yet are lost",
            file=self._notify,
        )

    def _close_at_exit(self) -> None:
        """The interpreter is exiting and this logger was never closed: store what is queued
        and end the run, FAILED (KILLED after Ctrl-C) when the program died of an uncaught
        exception, FINISHED otherwise."""
        self.close(status_on_exit(getattr(sys, "last_type", None)))

    def log_model(self, model: Any, name: str, **kwargs: Any) -> str | None:
        """Log checkpoint `model` as a pyfunc model of this run; returns the model URI.

        The run's params are flushed first (with the close deadline): the LoggedModel copies
        them.
        """
        self._refuse_in_forked_child()
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
        self._refuse_in_forked_child()
        log_dataset_input(self.client, self.run_id, name, context, digest, source, num_rows)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every point handed over so far is stored; returns False when `timeout`
        seconds passed first or the shipper is gone (the points stay in the log)."""
        self._refuse_in_forked_child()
        if self._closed:
            return self._final_state is not None and self._final_state.done
        self._wal.check()
        segment, end = self._wal.write_marked(json_line({"t": "f"}))
        return self._shipper.wait_flushed(segment, end, timeout)

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
