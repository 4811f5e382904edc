"""Whether a process still exists: the shipper, `newsdesk sync` and the sweep ask it of the
process that owns a run's log or a trial, to tell a live owner from a dead one."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True


def scheduler_state(pid: int) -> str | None:
    """The scheduler's one-letter state of process `pid` (Linux `/proc/<pid>/stat`): R running
    or waiting for a core, S asleep (on a socket, a lock, a timer), D in disk I/O, T stopped,
    Z exited. None where `/proc` does not say (another system, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name in parentheses may hold spaces or parentheses: the state follows the
    # last closing one.
    after = stat[stat.rfind(b")") + 2 :]
    return after[:1].decode("ascii", "replace") or None
