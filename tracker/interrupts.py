"""Ctrl-C and SIGTERM that Python swallowed are delivered again.

A signal handler that raises runs at whatever bytecode the main thread is executing. When that is
a weakref callback or a `__del__` run by the garbage collector (matplotlib's transform tree has
many), Python prints "Exception ignored in ..." and carries on: the interrupt is lost and a
command that should have ended 143 runs to completion. While `redeliver_swallowed_interrupts()` is
active, such an interrupt is sent to this process again a moment later, from a helper thread, so
that it is raised in ordinary code, where it unwinds as intended.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tracker.interface import TerminatedBySignal

REDELIVERY_DELAY_S = 0.05
"""Long enough that the unraisable hook and the callback that failed have returned when the
signal is handled again; short against any step of a command."""


def swallowed_signal(unraisable: Any) -> int | None:
    """The signal whose interrupt `unraisable` (a `sys.UnraisableHookArgs`) swallowed, if any."""
    exc = unraisable.exc_value
    if isinstance(exc, TerminatedBySignal):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    return None


@contextmanager
def redeliver_swallowed_interrupts() -> Iterator[None]:
    """Within the block, an interrupt lost in a callback is sent again; other unraisable
    exceptions go to the hook that was there before. Main thread only (signals are handled
    there); elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        signum = swallowed_signal(unraisable)
        if signum is None:
            previous(unraisable)
            return
        # Not os.kill here: sent to itself, the signal would be handled at once, inside this
        # hook, and lost again.
        resend = threading.Timer(REDELIVERY_DELAY_S, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM is raised like Ctrl-C (`TerminatedBySignal`, a
    `KeyboardInterrupt`), so that whatever is open unwinds and ends KILLED; interrupts lost in
    a callback are delivered again. The handler that was there before comes back after.
    Main thread only (signals are handled there); elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise TerminatedBySignal(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with redeliver_swallowed_interrupts():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)
