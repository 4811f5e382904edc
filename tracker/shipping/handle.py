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
    ShipState,
    disk_bytes,
    read_state,
    staged_uploads,
    unshipped_points,
)


class ShipperHandle:
    """The shipper of the run log in `directory`, forked on creation."""

    def __init__(self, directory: Path, tracking_uri: str, config: WriterConfig) -> None:
        self.directory = directory
        self._config = config
        self.pid = start_shipper(directory, tracking_uri, config)
        # Whether the last `wait_flushed` timed out: the store has then had its patience.
        self.store_unanswered = False

    def wake(self) -> None:
        """Ask the shipper to read the log now."""
        if not self.exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, WAKE_SIGNAL)

    def exited(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True  # reaped elsewhere
        return pid != 0

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def wait_flushed(self, segment: str, end: int, timeout: float | None) -> bool:
        """Block until the store acknowledged the log up to `end` of `segment`; False when
        the shipper exited or `timeout` passed first."""
        self.wake()
        deadline = None if timeout is None else time.monotonic() + timeout
        while read_state(self.directory).acked.get(segment, 0) < end:
            if self.exited():
                return False
            if deadline is not None and time.monotonic() > deadline:
                self.store_unanswered = True
                return False
            time.sleep(0.005)
        self.store_unanswered = False
        return True

    def wait_closed(self, notify: TextIO) -> ShipState:
        """After the terminal status is in the log: until the shipper exits, or has waited on
        the store for `close_timeout_s` without progress (then it is stopped; its acknowledged
        positions are on disk).

        Only time the shipper spends waiting (asleep on a request, a lock or a backoff) counts
        against the store; time it spends working or waiting for a core does not: a slow store
        or a starved shipper on a busy machine is not a dead store. A shipper held that long
        without running (stopped, or starved) is named once on `notify`.

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
        last = time.monotonic()
        while not self.exited():
            state = read_state(self.directory)
            now = time.monotonic()
            elapsed, last = now - last, now
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
            elif scheduler_state(self.pid) in _NOT_WAITING:
                held += elapsed
                if held >= patience and not said_held:
                    said_held = True
                    print(_held_message(self.pid, state, self.directory), file=notify)
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


def leftover_message(directory: Path, state: ShipState, run_id: str) -> str:
    """What the store did not take by the close, where it is kept, and what to run."""
    count = unshipped_points(directory, state)
    uploads = staged_uploads(directory)
    also = f" and {uploads} artifact upload(s)" if uploads else ""
    size = disk_bytes(directory) / 2**20
    reason = state.last_error or "store unavailable"
    return (
        f"newsdesk: the tracking store did not accept {count} metric points{also} of run "
        f"{run_id} ({reason}); kept in {directory} ({size:.1f} MiB); "
        f"run 'newsdesk sync' once the store is back"
    )


def rejected_message(state: ShipState, run_id: str) -> str:
    """What the store refused for good, and where the refused entries are kept."""
    return (
        f"newsdesk: the tracking store refused {state.rejected} entries of run "
        f"{run_id} ({state.rejected_first}); kept in {state.rejected_path}; "
        "the run ends FAILED"
    )
