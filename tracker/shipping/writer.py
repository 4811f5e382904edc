"""The training process's side of the run's log: `WalWriter` appends one line per call.

Each line goes to the OS with one `os.write` on an `O_APPEND` descriptor before the call
returns (see `tracker.shipping.wal` for the format). The writer also keeps the log's promise
when its files misbehave: several threads, a full disk, a rollover that cannot open the
next segment, and a log folder deleted while the run is open.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tracker.shipping.wal import FILES_DIR, RunMeta, write_meta

# Every this many bytes written the writer looks whether its log folder was deleted under it
# (one `fstat`, every ~2,000 lines); a rollover, a flush and the close look too.
VANISH_CHECK_BYTES = 64 << 10


class RunLogError(OSError):
    """A line could not be appended to the run's log (a full disk, a folder that vanished or
    turned read-only). The message names the log and says what became of the call's data;
    everything logged before it is intact in the log."""


def ensure_writable(spool_dir: Path) -> None:
    """Raise `RunLogError` naming `spool_dir` when run logs cannot be created there."""
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=spool_dir):
            pass
    except OSError as exc:
        raise RunLogError(
            exc.errno,
            f"cannot write run logs in {spool_dir} ({exc.strerror or exc}); give the "
            "logger another folder (spool_dir=...)",
        ) from exc


class WalWriter:
    """Appends lines to the run's current segment; starts a new one past `segment_bytes`.

    Safe to call from several threads: a lock orders the lines, the segment's size and the
    rollover. A failed write never leaves a torn line for the next one to glue onto: it is
    cut off again, or, where that fails too, the segment is left (a torn last line is one
    the reader ignores) and the next line starts a new one. A rollover that cannot open the
    new segment keeps writing to the current one and tries again later.

    A log folder deleted while the run is open (a cleanup script, a user) is made again: the
    current segment, still open here, is read back and written into it, and
    `on_recreated(bytes_recovered)` is called so that the owner can start a new shipper and
    say what happened. Older segments that the store had not taken yet are gone with it.
    """

    def __init__(
        self,
        directory: Path,
        meta: RunMeta,
        segment_bytes: int,
        on_recreated: Callable[[int], None] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_meta(directory, meta)
        self.directory = directory
        self._meta = meta
        self._segment_bytes = segment_bytes
        self._on_recreated = on_recreated
        self._lock = threading.Lock()
        self._fd = -1
        self._closed = False
        self._roll_due = False
        # Why there is no segment to write to (a failed write, then no new segment).
        self._broken: OSError | None = None
        self.segment, self._fd = self._new_segment()
        self.size = 0
        self._set_next_check()

    def _new_segment(self) -> tuple[str, int]:
        # The name sorts in writing order across processes (a resumed run adds segments).
        # Readable too: a segment whose folder was deleted is read back through it.
        name = f"seg-{time.time_ns():020d}-{os.getpid()}.log"
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        return name, os.open(self.directory / name, flags, 0o644)

    def write(self, data: bytes) -> None:
        """One line, handed to the OS before returning (`os.write`, no Python buffer).

        Raises `RunLogError` (naming the log) when the line could not be written whole; the
        log then holds none of it."""
        lock = self._lock
        lock.acquire()  # not `with`: on the caller's hot path it costs a third more
        try:
            self._append(data)
        finally:
            lock.release()

    def write_marked(self, data: bytes) -> tuple[str, int]:
        """Write a line and return where it ends (segment, offset), for a flush to wait on."""
        with self._lock:
            return self._append(data)

    def _append(self, data: bytes) -> tuple[str, int]:
        """One `os.write` and one comparison (the caller holds the lock); the rest only past
        `_next_check` (a rollover, a look for a deleted folder) or while `_unusual` (closed,
        a rollover due, no segment after a failure). Returns where the line ends, before any
        rollover it causes."""
        if self._unusual:
            self._before_append()
        start = self.size
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # a regular file takes all of it unless it is full
                self._write_all(memoryview(data)[written:])
        except OSError as exc:
            self._cut_back(start)
            raise self._error(exc) from exc
        self.size = size = start + len(data)
        mark = (self.segment, size)
        if size >= self._next_check:
            self._after_append()
        return mark

    def _after_append(self) -> None:
        if self.size >= self._segment_bytes:
            self._roll_due = True
            self._roll(must=False)
        else:
            self._recreate_if_deleted()
        self._set_next_check()

    def _set_next_check(self) -> None:
        self._unusual = self._closed or self._roll_due or self._fd < 0
        self._next_check = min(self._segment_bytes, self.size + VANISH_CHECK_BYTES)

    def _before_append(self) -> None:
        if self._closed:
            raise RunLogError(errno.EBADF, f"the run log {self.directory} is closed")
        self._recreate_if_deleted()
        if self._roll_due:
            self._roll(must=self._fd < 0)
        self._set_next_check()
        if self._fd < 0:
            raise self._error(self._broken or OSError(errno.EBADF, "no segment"))

    def check(self) -> None:
        """Look now whether the log folder was deleted (and make it again): before a flush
        or the close waits on the shipper."""
        with self._lock:
            if not self._closed:
                self._recreate_if_deleted()

    def _error(self, exc: OSError) -> RunLogError:
        return RunLogError(
            exc.errno,
            f"could not append to the run log {self.directory}: {exc.strerror or exc}; this "
            "call's data was not logged, everything logged before it is kept",
        )

    def _write_all(self, view: memoryview) -> None:
        # A regular file takes all of it in one call unless the disk is full.
        while view:
            view = view[os.write(self._fd, view) :]

    def _cut_back(self, size: int) -> None:
        """After a failed write: cut off what part of the line reached the file, so that the
        next line does not glue onto it; if even that fails, leave the segment."""
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            self._roll_due = True
            self._roll(must=True)

    def _roll(self, *, must: bool) -> None:
        """Continue in a new segment. When it cannot be opened the current one goes on
        (unless `must`: its end is torn, so no further line may go there)."""
        try:
            segment, fd = self._new_segment()
        except OSError as exc:
            if must and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if must:
                self._broken = exc
            self._set_next_check()
            return
        old, self._fd = self._fd, fd
        self.segment, self.size, self._roll_due = segment, 0, False
        if old >= 0:
            os.close(old)
        self._set_next_check()

    def _recreate_if_deleted(self) -> None:
        if self._fd < 0 or os.fstat(self._fd).st_nlink > 0:
            return
        content = self._read_back()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_meta(self.directory, self._meta)
            segment, fd = self._new_segment()
        except OSError as exc:  # the folder cannot be made again (its parent is gone too)
            raise self._error(exc) from exc
        old = self._fd
        self.segment, self._fd = segment, fd
        self.size, self._roll_due = 0, False
        os.close(old)
        self._write_all(memoryview(content))
        self.size = len(content)
        self._set_next_check()
        if self._on_recreated is not None:
            self._on_recreated(len(content))

    def _read_back(self) -> bytes:
        """The whole current segment, through its descriptor (its name is gone)."""
        chunks, offset = [], 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        content = b"".join(chunks)
        return content[: content.rfind(b"\n") + 1]  # whole lines only

    def stage(self) -> Path:
        """A new, empty folder in the log for the files of one artifact upload; named so that
        no other process or call of this run can pick the same."""
        folder = self.directory / FILES_DIR / f"{time.time_ns():020d}-{os.getpid()}"
        folder.mkdir(parents=True)
        return folder

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._set_next_check()
