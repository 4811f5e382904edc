"""How a training process wakes its shipper: one signal, and a sleep that it cuts short.

The shipper looks at the log at most once a second (each wakeup takes a core from the loop
for a moment); `flush` and `close` want it to look now, and a retry's backoff should end as
soon as they ask.
"""

from __future__ import annotations

import signal
import time

# Sent by the owner when it wants the shipper to look at the log now (a flush, the close).
WAKE_SIGNAL = signal.SIGUSR1


def sleep_until_woken(seconds: float, poll_s: float | None = None) -> None:
    """Sleep `seconds`, or until the wake signal. Where there is no `sigtimedwait` (macOS) no
    signal can end the sleep: then it lasts at most `poll_s`, for a caller that looks again
    soon instead."""
    if hasattr(signal, "sigtimedwait"):
        signal.sigtimedwait((WAKE_SIGNAL,), seconds)
    else:
        time.sleep(seconds if poll_s is None else min(seconds, poll_s))
