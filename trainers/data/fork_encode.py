"""Encoding many texts to padded token ids on two cores: a forked child takes the second half.

jieba's segmentation is pure Python and holds the GIL, so threads cannot share it; it was a
large part of predicting many headlines with a `char+word` model. A child made
by `fork` already holds the loaded tokenizer and vocabulary (nothing is pickled or loaded
again) and sends back one array of ids through a pipe.

Whatever goes wrong on the child's side (no `fork` on this platform, a failed child, a child
that does not answer in time) costs only speed: its half is then encoded here.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Sequence

import numpy as np

# Below this many texts a fork (a copy of a process with torch loaded) is not worth it.
MIN_PARALLEL = 2_000


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def encode_all(
    texts: Sequence[str],
    encode: Callable[[str], list[int]],
    pad_size: int,
    grace_s: float = 5.0,
) -> np.ndarray:
    """[len(texts), pad_size] int64 ids, `encode` applied to every text: half of them in a
    forked child when there are enough texts and a second core. The child may take twice
    as long as this process took for its half, plus `grace_s`."""
    if len(texts) < MIN_PARALLEL or usable_cores() < 2 or not hasattr(os, "fork"):
        return _encode(texts, encode, pad_size)
    half = len(texts) // 2
    child = _start_child(texts[half:], encode, pad_size)
    started = time.monotonic()
    first = _encode(texts[:half], encode, pad_size)
    deadline = time.monotonic() + (time.monotonic() - started) * 2 + grace_s
    second = _collect(child, len(texts) - half, pad_size, deadline) if child else None
    if second is None:
        second = _encode(texts[half:], encode, pad_size)
    return np.concatenate([first, second])


def _encode(texts: Sequence[str], encode: Callable[[str], list[int]], pad_size: int) -> np.ndarray:
    out = np.zeros((len(texts), pad_size), dtype=np.int64)
    for row, text in enumerate(texts):
        out[row] = encode(text)
    return out


def _start_child(
    texts: Sequence[str], encode: Callable[[str], list[int]], pad_size: int
) -> tuple[int, int] | None:
    """(pid, read end of the pipe) of a child writing the ids of `texts`, or None."""
    try:
        read, write = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:  # the child: encode, write, and leave without running any cleanup
        code = 1
        try:
            os.close(read)
            data = _encode(texts, encode, pad_size).tobytes()
            view = memoryview(data)
            while view:
                view = view[os.write(write, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _collect(
    child: tuple[int, int], rows: int, pad_size: int, deadline: float
) -> np.ndarray | None:
    """The child's array, or None (and the child stopped) if it failed or is late."""
    pid, read = child
    expected = rows * pad_size * 8
    chunks, received = [], 0
    try:
        while received < expected:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([read], [], [], wait)[0]:
                break
            chunk = os.read(read, expected - received)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    finally:
        os.close(read)
        if received < expected:
            _stop(pid)
        else:
            os.waitpid(pid, 0)
    if received < expected:
        return None
    return np.frombuffer(b"".join(chunks), dtype=np.int64).reshape(rows, pad_size)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
