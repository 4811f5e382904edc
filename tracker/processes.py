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
