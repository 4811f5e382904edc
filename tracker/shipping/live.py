"""The live shipper: a child forked from the training process when a logger opens, following
the run's log until the run ends.

It runs in its own session (Ctrl-C in the terminal does not reach it) at a lower CPU priority,
so MLflow's `log_batch` work (SQLAlchemy, HTTP) competes neither for the loop's GIL nor for its
share of the cores. It ends when it has shipped the run's terminal status (written by `close`);
when the training process dies without closing, it ships everything the log holds and ends the
run FAILED with a tag that says so, unless another process has reopened the run meanwhile
(`newsdesk resume`): then it stops, and leaves the run and its log to that process. One
shipper at a time holds a run's log (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from tracker.shipping.config import WriterConfig
from tracker.shipping.shipper import Shipper
from tracker.shipping.wake import WAKE_SIGNAL, sleep_until_woken
from tracker.shipping.wal import LOCK_FILE, SHIPPER_LOG, locked, read_meta

# How often an idle shipper looks whether the training process is still there.
OWNER_CHECK_S = 1.0


def ship_live(shipper: Shipper, owner_pid: int, *, lock_held: bool = False) -> int:
    """Follow the log until the owner's terminal status is shipped, or the owner died and
    everything it wrote is shipped. Without `lock_held` (an earlier shipper of this run still
    held the log), it waits for the lock first. Returns the child's exit code."""
    config = shipper.config
    with contextlib.ExitStack() as stack:
        stack.callback(shipper.close)
        stack.enter_context(shipper.sender.single_attempts())
        if not lock_held:
            stack.enter_context(locked(shipper.directory, wait_s=float("inf")))
        shipper.reload()
        orphan_deadline: list[float] = []

        def taken_over() -> bool:
            """Another process reopened the run (`newsdesk resume`): its own shipper follows
            the log from here, and neither the run nor the log is this one's to end."""
            try:
                return read_meta(shipper.directory).owner_pid != owner_pid
            except (OSError, ValueError):
                return True  # the log is gone (or being made again by its owner)

        def give_up() -> bool:
            if os.getppid() == owner_pid:
                return False  # the owner's close decides how long to wait
            if taken_over():
                return True
            if not orphan_deadline:
                orphan_deadline.append(time.monotonic() + config.orphan_patience_s)
            return time.monotonic() >= orphan_deadline[0]

        reader = shipper.reader
        while True:
            # Asked before reading: once the owner is gone, this read sees all it wrote.
            orphan = os.getppid() != owner_pid
            if orphan and taken_over():
                return 0  # what it shipped is acknowledged in the state on disk
            trigger = shipper.fill()
            if trigger is None and not orphan:
                wait = config.flush_interval_s
                if len(reader.pending):
                    wait -= time.monotonic() - reader.pending_since
                wait = min(wait, OWNER_CHECK_S)  # notice soon when the owner dies
                if wait > 0:
                    # Few wakeups: each one would take a core from the loop for a moment.
                    # `flush` and `close` wake it at once.
                    sleep_until_woken(wait, poll_s=0.05)
                    continue
            if not shipper.ship_pending(give_up):
                return 1  # orphaned and the store stays down (or taken over): left to others
            if reader.artifact is not None:
                if not shipper.ship_artifact(give_up):
                    return 1
                continue
            if reader.status is not None:
                shipper.apply_status(reader.status)
                shipper.finish(owner_gone=os.getppid() != owner_pid)
                return 0
            if orphan and trigger is None:
                if taken_over():
                    return 0
                shipper.end_abandoned()
                shipper.finish(owner_gone=True)
                return 0


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
    # The caller's `sys.stderr` may not write to descriptor 2 (a test runner's capture, an
    # application's own stream): what the shipper says must reach its log.
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


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
        shipper = Shipper.to_mlflow(directory, config, tracking_uri=tracking_uri)
        code = ship_live(shipper, owner, lock_held=lock_held)
    except BaseException:  # noqa: BLE001 - a forked child must never return into the caller
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)
