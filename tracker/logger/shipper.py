"""The shipper: reads a run's write-ahead log and writes it to the store, outside the loop.

`start_shipper` forks it from the training process when a logger opens. It runs in its own
session (Ctrl-C in the terminal does not reach it) at a lower CPU priority, so MLflow's
`log_batch` work (SQLAlchemy, HTTP) competes neither for the loop's GIL nor for its share of
the cores. It ends when it has shipped the run's terminal status (written by `close`); when the
training process dies without closing, it ships everything the log holds and ends the run
FAILED with a tag that says so. `newsdesk sync` runs the same `Shipper` by hand (`ship_all`).

Exactly once: after each batch the store accepted, `state.json` records how far each segment
is acknowledged; a batch is sent again only when it was not acknowledged, and the store
recognises its points (same key, timestamp, step and value). One shipper at a time holds a
run's log (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from mlflow.entities import Metric, Param, RunTag
from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
from mlflow.tracking import MlflowClient

from tracker.logger.spool import rejected_path, write_rejected
from tracker.logger.wal import (
    LOCK_FILE,
    META_FILE,
    SHIPPER_LOG,
    Record,
    WalError,
    locked,
    read_meta,
    read_records,
    read_state,
    segments,
    set_aside,
    write_state,
)
from tracker.logger.writer import Batch, WriterConfig, chunks, is_permanent, separate
from tracker.processes import process_alive
from tracker.schema import PROCESS_DIED_TAG, REJECTED_TAG
from tracker.store.mlflow_internals import MAX_PARAMS_TAGS_PER_BATCH, insert_metrics, sql_engine

_OPEN = (
    MlflowRunStatus.to_string(MlflowRunStatus.RUNNING),
    MlflowRunStatus.to_string(MlflowRunStatus.SCHEDULED),
)


# How often an idle shipper looks whether the training process is still there.
OWNER_CHECK_S = 1.0

# Sent by the owner when it wants the shipper to look at the log now (a flush, the close).
WAKE_SIGNAL = signal.SIGUSR1


def make_sender(client: MlflowClient, run_id: str):
    """Writes one batch to `run_id`: through `client.log_batch`, except the metric points of
    a database-backed store, which go in bulk (`insert_metrics`: the same rows for a fraction
    of the CPU, which on a small machine is taken from the training loop). Its `over_http`
    says whether requests go to a tracking server (which takes several at once)."""
    engine = sql_engine(client)

    def send(metrics: Sequence, params: dict[str, str], tags: dict[str, str]) -> None:
        if engine is not None and metrics:
            insert_metrics(engine, run_id, metrics)
            metrics = ()
            if not params and not tags:
                return
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )

    send.over_http = engine is None  # type: ignore[attr-defined]
    return send


def apply_status(client: MlflowClient, run_id: str, status: str, end_time: int | None) -> bool:
    """End the run with `status` unless the store holds a newer end; True when applied."""
    info = client.get_run(run_id).info
    if info.status not in _OPEN and (info.end_time or 0) >= (end_time or 0):
        return False
    client.set_terminated(run_id, status=status, end_time=end_time)
    return True


class ShipError(RuntimeError):
    """The store did not take a run's log; the message names the log folder."""


class Shipper:
    """Ships one run's log; the same code for the live child and for `newsdesk sync`."""

    def __init__(
        self,
        directory: Path,
        config: WriterConfig,
        *,
        tracking_uri: str | None = None,
        notify: TextIO | None = None,
    ) -> None:
        self.directory = directory
        self.meta = read_meta(directory)
        self._cfg = config
        self._notify = notify if notify is not None else sys.stderr
        self.client = MlflowClient(tracking_uri=tracking_uri or self.meta.tracking_uri)
        self._send = make_sender(self.client, self.meta.run_id)
        # Metric requests sent side by side (a tracking server only); made on first use,
        # in the process that ships (the live shipper is forked).
        self._parallel = config.parallel_requests if self._send.over_http else 1
        self._pool: ThreadPoolExecutor | None = None
        self.state = read_state(directory)
        self._read = dict(self.state.acked)
        self._pending = Batch()
        self._pending_since = 0.0
        self._status: Record | None = None
        # An artifact upload read from the log: (segment, offset past its line, record). Its
        # line is acknowledged only once the files are uploaded.
        self._artifact: tuple[str, int, Record] | None = None
        self.points_shipped = 0
        self.set_aside: list[str] = []
        self.kept_status = False
        self.ended_run = False
        self._answered_at = time.monotonic()  # the store's last accepted request

    # ----- reading ----------------------------------------------------------------------------
    def _fill(self) -> str | None:
        """Read records into the pending batch: 'status', 'flush' or 'artifact' when such a
        record was read, 'full' when the batch is full, None at the end of what the log
        holds."""
        limit = self._cfg.batch_size * self._parallel  # `chunks` splits it into requests
        threshold = min(self._cfg.wake_threshold, limit)
        pending = self._pending
        for seg in segments(self.directory):
            start = self._read.get(seg.name, 0)
            try:
                if seg.stat().st_size <= start:
                    continue
                for end, record in read_records(seg, start):
                    kind = record.kind
                    if kind == "m" and len(pending.metrics) + len(record.points) > limit:
                        if len(pending):
                            return "full"  # this line starts the next batch
                    if kind == "a":
                        self._artifact = (seg.name, end, record)
                        return "artifact"  # the points before it are sent first
                    if not len(pending):
                        self._pending_since = time.monotonic()
                    self._read[seg.name] = end
                    if kind == "m":
                        pending.metrics.extend(record.points)
                    elif kind == "p":
                        pending.params.update(record.items)
                    elif kind == "g":
                        pending.tags.update(record.items)
                    elif kind == "s":
                        self._status = record
                        return "status"
                    else:
                        return "flush"
                    small = len(pending.params) + len(pending.tags)
                    if len(pending) >= threshold or small >= MAX_PARAMS_TAGS_PER_BATCH:
                        return "full"
            except FileNotFoundError:
                continue  # deleted by the owner after a clean end
            except WalError as exc:
                self._set_aside(seg, exc)
        return None

    def _set_aside(self, seg: Path, exc: WalError) -> None:
        aside = set_aside(seg)
        self._read.pop(seg.name, None)
        self.state.acked.pop(seg.name, None)
        line = f"{exc}; set aside as {aside.name}"
        self.set_aside.append(line)
        print(f"newsdesk: {line}", file=self._notify)

    # ----- sending ----------------------------------------------------------------------------
    def _ship_pending(self, give_up: Callable[[], bool]) -> bool:
        """Send the pending batch (retrying while `give_up()` is False); True once the store
        took it or refused parts of it for good, and the log positions are acknowledged."""
        batch = self._pending
        pieces = list(chunks(batch))
        if self._parallel > 1 and sum(1 for p in pieces if p.metrics) > 1:
            pieces = self._send_side_by_side(pieces)
        for piece in pieces:
            if not self._send_piece(piece, give_up):
                write_state(self.directory, self.state)
                return False
        self.points_shipped += len(batch.metrics)
        self._pending = Batch()
        self.state.acked.update(self._read)
        write_state(self.directory, self.state)
        return True

    def _send_side_by_side(self, pieces: list[Batch]) -> list[Batch]:
        """Send the metric pieces at once, each tried once; returns what is left to send one
        by one (with retries and the separation of refused entries): the pieces that failed,
        then the params and tags. Re-sending a piece the store did take is harmless: it
        recognises the points."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="ship")
        metric_pieces = [p for p in pieces if p.metrics]

        def attempt(piece: Batch) -> bool:
            try:
                self._send(piece.metrics, {}, {})
            except Exception:  # noqa: BLE001 - retried one by one, where errors are handled
                return False
            return True

        left: list[Batch] = []
        sent_all = self._pool.map(attempt, metric_pieces)
        for piece, sent in zip(metric_pieces, sent_all, strict=True):
            if sent:
                self.state.stored += len(piece.metrics)
                self.state.last_error = None
            else:
                left.append(piece)
        return left + [p for p in pieces if not p.metrics]

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _send_piece(self, piece: Batch, give_up: Callable[[], bool]) -> bool:
        def refused(error: str) -> bool:
            parts = separate(piece)
            if len(parts) > 1:  # find the entries it refused; send the rest
                return all(self._send_piece(part, give_up) for part in parts)
            self._reject(piece, error)
            return True

        def send() -> None:
            self._send(piece.metrics, piece.params, piece.tags)
            self.state.stored += len(piece.metrics)

        return self._retrying(send, refused, give_up)

    def _retrying(
        self,
        action: Callable[[], None],
        refused: Callable[[str], bool],
        give_up: Callable[[], bool],
    ) -> bool:
        """Run `action` until it succeeds (True), the store refuses it for good (then
        `refused(error)` decides), or `give_up()` says stop trying (False)."""
        delay = self._cfg.backoff_initial_s
        while True:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - every store error is retried or kept
                error = f"{type(exc).__name__}: {exc}"
                self.state.last_error = error
                self.state.failures += 1
                if is_permanent(exc):
                    return refused(error)
                if give_up():
                    return False
                write_state(self.directory, self.state)  # the owner shows the reason
                # Cut short by `flush` and `close` (`wake_shipper`): they want an attempt now.
                _sleep_until_woken(delay)
                delay = min(delay * 2, self._cfg.backoff_max_s)
                continue
            self.state.last_error = None
            self._answered_at = time.monotonic()
            return True

    def _ship_artifact(self, give_up: Callable[[], bool]) -> bool:
        """Upload the artifact read last (the points before it are stored), then acknowledge
        its line and delete the copy. Uploading again after a crash before the
        acknowledgement writes the same files again."""
        assert self._artifact is not None
        segment, end, record = self._artifact
        folder = self.directory / str(record.folder)
        run_id = self.meta.run_id

        def refused(error: str) -> bool:
            self._reject_artifact(folder, record.artifact_path, error)
            return True

        if folder.is_dir():

            def upload() -> None:
                self.client.log_artifacts(run_id, str(folder), record.artifact_path)

            if not self._retrying(upload, refused, give_up):
                write_state(self.directory, self.state)
                return False
        else:  # uploaded and acknowledged, then the state file was lost: nothing to redo
            print(f"newsdesk: {folder} is gone; its upload is skipped", file=self._notify)
        self._read[segment] = end
        self.state.acked.update(self._read)
        write_state(self.directory, self.state)
        shutil.rmtree(folder, ignore_errors=True)
        self._artifact = None
        return True

    def _reject(self, piece: Batch, error: str) -> None:
        write_rejected(self._rejected_file(error), [(piece, error)])
        self.state.rejected += len(piece)

    def _reject_artifact(self, folder: Path, artifact_path: str | None, error: str) -> None:
        """Keep the files of a refused upload beside the rejected file, and say where."""
        path = self._rejected_file(error)
        kept = path.with_name(f"{path.name}-{folder.name}")
        shutil.move(folder, kept)
        write_rejected(path, [], artifacts=[(str(kept), artifact_path, error)])
        self.state.rejected += 1

    def _rejected_file(self, error: str) -> Path:
        state = self.state
        if state.rejected_path is None:
            path = rejected_path(self.directory.parent, self.meta.run_id)
            state.rejected_path = str(path)
            state.rejected_first = error.splitlines()[0][:200]
        return Path(state.rejected_path)

    # ----- ending -----------------------------------------------------------------------------
    def _apply_status(self, record: Record) -> None:
        status = record.status or MlflowRunStatus.to_string(MlflowRunStatus.FINISHED)
        state = self.state
        if state.rejected:
            if status == "FINISHED":
                status = "FAILED"  # not cleanly finished: part of what it logged is missing
            self.client.set_tag(
                self.meta.run_id, REJECTED_TAG, f"{state.rejected} entries: {state.rejected_first}"
            )
        if apply_status(self.client, self.meta.run_id, status, record.end_time):
            state.status_applied = status
            self.ended_run = True
        else:
            self.kept_status = True
        self._status = None
        write_state(self.directory, state)

    def _end_abandoned(self) -> None:
        """The process that wrote the log died without closing its logger."""
        run_id = self.meta.run_id
        if self.client.get_run(run_id).info.status in _OPEN:
            self.client.set_tag(
                run_id,
                PROCESS_DIED_TAG,
                f"process {self.meta.owner_pid} ended without closing its logger "
                "(killed?); every point it logged was shipped",
            )
            self._apply_status(Record("s", status="FAILED", end_time=int(time.time() * 1000)))

    def _finish(self, *, owner_gone: bool = False) -> None:
        """Everything is shipped and the run ended. The owner deletes the log once it has
        read the outcome; with no owner left, the shipper deletes it."""
        self.state.done = True
        write_state(self.directory, self.state)
        if owner_gone:
            shutil.rmtree(self.directory, ignore_errors=True)

    # ----- the two ways to run ----------------------------------------------------------------
    def ship_live(self, owner_pid: int, *, lock_held: bool = False) -> int:
        """The forked child's loop: follow the log until the owner's terminal status is
        shipped, or the owner died and everything it wrote is shipped. Without `lock_held`
        (an earlier shipper of this run still held the log), it waits for the lock first."""
        with contextlib.ExitStack() as stack:
            stack.callback(self._close_pool)
            stack.enter_context(mlflow_retries_off())
            if not lock_held:
                stack.enter_context(locked(self.directory, wait_s=float("inf")))
            self.state = read_state(self.directory)  # an earlier shipper may have moved on
            self._read = dict(self.state.acked)
            orphan_deadline: list[float] = []

            def give_up() -> bool:
                if os.getppid() == owner_pid:
                    return False  # the owner's close decides how long to wait
                if not orphan_deadline:
                    orphan_deadline.append(time.monotonic() + self._cfg.orphan_patience_s)
                return time.monotonic() >= orphan_deadline[0]

            while True:
                # Asked before reading: once the owner is gone, this read sees all it wrote.
                orphan = os.getppid() != owner_pid
                trigger = self._fill()
                if trigger is None and not orphan:
                    wait = self._cfg.flush_interval_s
                    if len(self._pending):
                        wait -= time.monotonic() - self._pending_since
                    wait = min(wait, OWNER_CHECK_S)  # notice soon when the owner dies
                    if wait > 0:
                        # Few wakeups: each one would take a core from the loop for a moment.
                        # `flush` and `close` wake it at once (`wake_shipper`).
                        _sleep_until_woken(wait, poll_s=0.05)
                        continue
                if not self._ship_pending(give_up):
                    return 1  # orphaned and the store stays down: left to `sync`
                if self._artifact is not None:
                    if not self._ship_artifact(give_up):
                        return 1
                    continue
                if self._status is not None:
                    self._apply_status(self._status)
                    self.state.acked.update(self._read)
                    self._finish(owner_gone=os.getppid() != owner_pid)
                    return 0
                if orphan and trigger is None:
                    self._end_abandoned()
                    self._finish(owner_gone=True)
                    return 0

    def ship_all(self, *, wait_s: float = 0.0) -> bool:
        """`newsdesk sync`: ship everything the log holds, once, and apply its statuses;
        end the run FAILED when its process died without closing. False when another
        shipper holds the log (a live run). Raises `ShipError` when the store is down."""
        with contextlib.ExitStack() as stack:
            stack.callback(self._close_pool)
            try:
                held = stack.enter_context(locked(self.directory, wait_s=wait_s))
            except FileNotFoundError:
                return True  # its shipper finished and deleted it meanwhile: nothing left
            if not held:
                return False
            if not (self.directory / META_FILE).is_file():
                return True  # deleted by the shipper we waited for: all shipped
            self._ship_everything()
        return True

    def _ship_everything(self) -> None:
        """Retries like the live shipper (`mlflow_retries_off`), until `close_timeout_s`
        passes without an accepted request."""
        self.state = read_state(self.directory)
        self._read = dict(self.state.acked)
        self._answered_at = time.monotonic()

        def give_up() -> bool:
            return time.monotonic() - self._answered_at >= self._cfg.close_timeout_s

        while True:
            trigger = self._fill()
            with mlflow_retries_off():
                shipped = self._ship_pending(give_up)
                if shipped and self._artifact is not None:
                    shipped = self._ship_artifact(give_up)
            if not shipped:
                raise ShipError(
                    f"{self.directory}: the store did not take run {self.meta.run_id} "
                    f"({self.state.last_error}); run 'newsdesk sync' again later"
                )
            if trigger == "artifact":
                continue
            if trigger == "status" and self._status is not None:
                self._apply_status(self._status)
                self.state.acked.update(self._read)
                write_state(self.directory, self.state)
            elif trigger is None:
                break
        if self.state.status_applied is None and not self.kept_status:
            if process_alive(self.meta.owner_pid):
                return  # its process still runs (without a shipper): not ours to end
            self._end_abandoned()
        self._finish()


def _sleep_until_woken(seconds: float, poll_s: float | None = None) -> None:
    """Sleep `seconds`, or until `wake_shipper`'s signal. Where there is no `sigtimedwait`
    (macOS) no signal can end the sleep: then it lasts at most `poll_s`, for a caller that
    looks again soon instead."""
    if hasattr(signal, "sigtimedwait"):
        signal.sigtimedwait((WAKE_SIGNAL,), seconds)
    else:
        time.sleep(seconds if poll_s is None else min(seconds, poll_s))


@contextlib.contextmanager
def mlflow_retries_off() -> Iterator[None]:
    """No HTTP retries inside MLflow's client while shipping, then the user's setting again.

    MLflow's backoff doubles up to 120 s (one `log_batch` to a dead server returned after
    248 s): a store back from an outage was noticed up to two minutes late, `close` could
    not get an answer within its patience, and `newsdesk sync` took 4 minutes to say the
    store was down. `_retrying` retries instead, at most `backoff_max_s` apart, and `flush`
    and `close` can cut its wait short. Shipping runs in the forked shipper, in `newsdesk
    sync`, or in the sync `newsdesk resume` starts with before anything else talks to the
    store, so the training's own requests keep the user's setting. MLflow reads the variable
    at each request; it has no per-client setting."""
    name = MLFLOW_HTTP_REQUEST_MAX_RETRIES.name
    previous = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _detach(directory: Path) -> None:
    """Let go of what the child inherited from the training process's terminal and pipes: a
    caller waiting for the training's output to end (`subprocess.run`, a CI log) must not
    wait for the shipper too. What the shipper has to say goes to `shipper.log` in the log
    folder; the owner reports the outcome itself."""
    os.setsid()  # Ctrl-C and the terminal's hangup go to the training process only
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(directory / SHIPPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def start_shipper(directory: Path, tracking_uri: str, config: WriterConfig) -> int:
    """Fork the shipper of the log in `directory`; returns its pid (in the parent)."""
    owner = os.getpid()
    # Taken here, before the fork, so that from the moment the logger exists no `sync` can
    # ship its log. The child's copy of the descriptor keeps the lock (flock locks belong to
    # the open file, which both share) once the parent closes its own.
    lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock_held = True
    except BlockingIOError:
        lock_held = False  # the shipper of an earlier process of this run is finishing
    sys.stderr.flush()
    # Blocked in the child from its first instruction on, so that a wakeup sent at once is
    # queued for `sigtimedwait` instead of killing it (SIGUSR1's default action).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE_SIGNAL})
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(lock_fd)
        return pid
    code = 1
    try:
        _detach(directory)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.nice(config.shipper_niceness)
        from tracker.store.mlflow_internals import forget_inherited_connections

        forget_inherited_connections()
        if not lock_held:
            os.close(lock_fd)
        shipper = Shipper(directory, config, tracking_uri=tracking_uri)
        code = shipper.ship_live(owner, lock_held=lock_held)
    except BaseException:  # noqa: BLE001 - a forked child must never return into the caller
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)
