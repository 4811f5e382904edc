"""Interrupts that Python would swallow in a garbage-collector callback are delivered again."""

from __future__ import annotations

import gc
import signal
import sys
import time
import weakref

import pytest

from tracker.interface import TerminatedBySignal
from tracker.interrupts import redeliver_swallowed_interrupts


class _Node:
    pass


def _raise_in_callback(exc: BaseException) -> None:
    def callback(_: object) -> None:
        raise exc

    node = _Node()
    ref = weakref.ref(node, callback)
    del node
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_swallowed_interrupt_is_raised_again_in_ordinary_code(signum):
    def interrupt(received: int, frame: object) -> None:
        raise TerminatedBySignal(received) if received == signal.SIGTERM else KeyboardInterrupt

    previous = signal.signal(signum, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            with redeliver_swallowed_interrupts():
                swallowed = TerminatedBySignal(signum) if signum == signal.SIGTERM else None
                _raise_in_callback(swallowed or KeyboardInterrupt())
                time.sleep(10)  # interrupted within milliseconds
        if signum == signal.SIGTERM:
            assert raised.type is TerminatedBySignal and raised.value.signum == signum
    finally:
        signal.signal(signum, previous)


def test_other_unraisable_errors_reach_the_previous_hook_which_is_restored():
    seen: list[type[BaseException]] = []

    def record(unraisable: sys.UnraisableHookArgs) -> None:
        seen.append(type(unraisable.exc_value))

    outer = sys.unraisablehook
    sys.unraisablehook = record
    try:
        with redeliver_swallowed_interrupts():
            assert sys.unraisablehook is not record
            _raise_in_callback(ValueError("in a callback"))
        assert seen == [ValueError]
        assert sys.unraisablehook is record
    finally:
        sys.unraisablehook = outer
