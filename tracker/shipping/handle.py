"""The training process's side of its shipper: start it, wake it, wait for a flush or for the
close, stop it, and say what the store did not take.

Only the process that forked the shipper holds a `ShipperHandle`; it signals the shipper only
while it is unreaped, so a pid can never name another process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TextIO

from tracker.processes import scheduler_state
from tracker.shipping.config import WriterConfig
from tracker.shipping.live import start_shipper
from tracker.shipping.wake import WAKE_SIGNAL
from tracker.shipping.wal import (
    SHIPPER_LOG,
    ShipState,
    disk_bytes,
    read_state,
    staged_uploads,
    unshipped_points,
)

# How often a shipper that died is replaced before its log is left to `newsdesk sync`.
MAX_RESTARTS = 3


class ShipperHandle:
    """The shipper of the run log in `directory`, forked on creation; replaced when it dies
    before its work is done (the log on disk is all it needs), and said so on `notify`."""

    def __init__(
        self, directory: Path, tracking_uri: str, config: WriterConfig, notify: TextIO
    ) -> None:
        self.directory = directory
        self._tracking_uri = tracking_uri
        self._config = config
        self._notify = notify
        self.pid = start_shipper(directory, tracking_uri, config)
        self._exit_status: int | None = None  # set once reaped
        self._stopped = False  # by this handle, on purpose
        self.restarts = 0
        # Why no shipper is left (it died more often than it is replaced); None while one is.
        self.death: str | None = None
        # Whether the last `wait_flushed` timed out: the store has then had its patience.
        self.store_unanswered = False

    def wake(self) -> None:
        """Ask the shipper to read the log now."""
        if not self.exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, WAKE_SIGNAL)

    def exited(self) -> bool:
        if self._exit_status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0  # reaped elsewhere
            if pid == 0:
                return False
            self._exit_status = status
        return True

    def stop(self) -> None:
        if not self.exited():  # never signal a reaped pid: it may name another process
            self._stopped = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self._exit_status = -1

    def restart(self) -> None:
        """Stop the shipper, and start another that reads the log from its state on disk."""
        self.stop()
        self.pid = start_shipper(self.directory, self._tracking_uri, self._config)
        self._exit_status, self._stopped = None, False

    def _died(self) -> bool:
        """Whether the shipper exited before its work was done, without being stopped."""
        if not self.exited() or self._stopped:
            return False
        return not read_state(self.directory).done

    def _replace(self) -> bool:
        """After the shipper died: start another (it reads on from the acknowledged positions
        on disk) and say so; False once it has died more often than `MAX_RESTARTS`."""
        status = self._exit_status or 0
        how = (
            f"was killed by signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exited with code {os.waitstatus_to_exitcode(status)}"
        )
        cause = _last_line(self.directory / SHIPPER_LOG)
        said = f"the shipper of {self.directory} (pid {self.pid}) {how}" + (
            f": {cause}" if cause else ""
        )
        if self.restarts >= MAX_RESTARTS:
            self.death = f"{said}; it died {self.restarts + 1} times"
            return False
        self.restarts += 1
        try:
            self.pid = start_shipper(self.directory, self._tracking_uri, self._config)
        except OSError as exc:  # the log folder is gone or unwritable
            self.death = f"{said}; no new one could start ({exc})"
            return False
        print(
            f"newsdesk: {said}; a new one takes over from the log, which is intact",
            file=self._notify,
        )
        self._exit_status = None
        return True

    def wait_flushed(self, segment: str, end: int, timeout: float | None) -> bool:
        """Block until the store acknowledged the log up to `end` of `segment`; False when
        `timeout` passed first, or the shipper died and could not be replaced."""
        self.wake()
        deadline = None if timeout is None else time.monotonic() + timeout
        while read_state(self.directory).acked.get(segment, 0) < end:
            if self.exited():
                if not (self._died() and self._replace()):
                    return False
                self.wake()
            if deadline is not None and time.monotonic() > deadline:
                self.store_unanswered = True
                return False
            time.sleep(0.005)
        self.store_unanswered = False
        return True

    def wait_closed(self) -> ShipState:
        """After the terminal status is in the log: until the shipper exits, or has waited on
        the store for `close_timeout_s` without progress (then it is stopped; its acknowledged
        positions are on disk).

        Only time the shipper spends waiting (asleep on a request, a lock or a backoff) counts
        against the store; time it spends working or waiting for a core does not: a slow store
        or a starved shipper on a busy machine is not a dead store. A shipper held that long
        without running (stopped, or starved) is named once on `notify`; one that died is
        replaced.

        After a flush that timed out, the store has had that patience already: the close
        then also stops when two more of the shipper's attempts fail (counted from before
        the close woke it, so the second began after the wakeup; each failure wakes it
        again, so no backoff is waited out). Counting attempts rather than seconds lets a
        store that is back by then take everything however slow the machine is, and ends
        the command as soon as the store is seen still down, not `close_timeout_s` later."""
        failures = read_state(self.directory).failures  # before the wakeup
        self.wake()
        patience = self._config.close_timeout_s
        waited = held = 0.0  # since the last progress: waiting on the store; not running
        said_held = False
        seen = None
        quick, woken_at = self.store_unanswered, failures
        last, was_running = time.monotonic(), True
        while not self.exited() or (self._died() and self._replace()):
            state = read_state(self.directory)
            now = time.monotonic()
            elapsed, last = now - last, now
            # An interval is the store's only when the shipper was seen waiting at both of
            # its ends: this process, starved too, may look only now and then.
            running = scheduler_state(self.pid) in _NOT_WAITING
            running, was_running = running or was_running, running
            progress = (state.stored, sum(state.acked.values()))
            if progress != seen:
                if seen is not None:
                    quick = False  # the store took something: the full patience again
                seen = progress
                waited = held = 0.0
            elif quick and state.failures >= failures + 2:
                self.stop()
                break
            elif quick and state.failures > woken_at:
                woken_at = state.failures
                self.wake()
            elif running:
                held += elapsed
                if held >= patience and not said_held:
                    said_held = True
                    print(_held_message(self.pid, state, self.directory), file=self._notify)
            else:
                waited += elapsed
                if waited >= patience:
                    self.stop()
                    break
            time.sleep(0.01)
        return read_state(self.directory)


# The shipper's scheduler states in which it is not waiting on the store: running or waiting
# for a core (R), in local disk I/O (D), stopped (T, t).
_NOT_WAITING = frozenset("RDTt")


def _held_message(pid: int, state: ShipState, directory: Path) -> str:
    count = unshipped_points(directory, state)
    return (
        f"newsdesk: {count} metric points in {directory} are still to be stored; the "
        f"shipper (pid {pid}) gets little or no CPU time (a busy machine, or a stopped "
        "process), which is not the store's fault: waiting for it"
    )


def _last_line(path: Path) -> str:
    """The last line a shipper wrote to its log: the exception that ended it, if any."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def leftover_message(
    directory: Path, state: ShipState, run_id: str, death: str | None = None
) -> str:
    """What was not stored by the close, why (the store, or a shipper that kept dying),
    where it is kept, and what to run."""
    count = unshipped_points(directory, state)
    uploads = staged_uploads(directory)
    also = f" and {uploads} artifact upload(s)" if uploads else ""
    size = disk_bytes(directory) / 2**20
    where = f"kept in {directory} ({size:.1f} MiB)"
    if death is not None:
        return (
            f"newsdesk: the store has not confirmed {count} metric points{also} of run "
            f"{run_id}: {death}; {where}; once that is fixed, run 'newsdesk sync'"
        )
    reason = state.last_error or "store unavailable"
    return (
        f"newsdesk: the tracking store did not accept {count} metric points{also} of run "
        f"{run_id} ({reason}); {where}; run 'newsdesk sync' once the store is back"
    )


def rejected_message(state: ShipState, run_id: str) -> str:
    """What the store refused for good, and where the refused entries are kept."""
    return (
        f"newsdesk: the tracking store refused {state.rejected} entries of run "
        f"{run_id} ({state.rejected_first}); kept in {state.rejected_path}; "
        "the run ends FAILED"
    )


def damaged_message(state: ShipState, run_id: str) -> str:
    """Which lines of the log were damaged, and where they are kept."""
    return (
        f"newsdesk: {state.damaged} lines of the log of run {run_id} were damaged (first: "
        f"{state.damaged_first}); kept in {state.damaged_path}; the run ends FAILED"
    )
