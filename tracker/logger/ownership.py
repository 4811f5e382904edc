"""Who may log to a run: the process that opened its logger, and no other.

A forked child (a DataLoader worker) inherits the logger but not its shipper; another process
reopening a run that is open elsewhere would end it and delete the other's log. Both are
refused with a message that says why.
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections.abc import Callable
from pathlib import Path

from tracker.shipping.wal import other_owner


def refuse_a_run_open_elsewhere(directory: Path, run_id: str) -> None:
    """Two processes logging one run would each end it and delete the other's log; a run is
    reopened only once the process that has it open is gone (its shipper then stops)."""
    owner = other_owner(directory)
    if owner is not None:
        raise ValueError(
            f"run {run_id} is open in process {owner} (its log: {directory}); end that "
            "process, or let it finish, before reopening the run"
        )


def disowner(ref: weakref.ref) -> Callable[[], None]:
    """For `os.register_at_fork`: in a forked child (a DataLoader worker, say) the points
    would go to the parent's log with no shipper of the child's behind them. The child's copy is
    closed without touching the run: its first call fails with a message that says why, and
    its exit does not end the parent's run."""

    def disown() -> None:
        logger = ref()
        if logger is not None and not logger._closed:
            logger._closed = True
            logger._parent_pid = os.getppid()
            atexit.unregister(logger._close_at_exit)

    return disown
