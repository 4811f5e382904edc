"""Reading a run's log into the next batch to send: the shipper's input side.

`LogReader` remembers how far it has read each segment (ahead of what the store has
acknowledged, which the shipper keeps) and stops at the records that need the shipper's
attention before more is read: the run's terminal status, a flush request, an artifact upload
(its points before it are sent first), or a full batch. A damaged line is kept in a file
beside the log and reported, and reading goes on with the next line: the segment may still
be written to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tracker.shipping.batch import Batch
from tracker.shipping.wal import Record, keep_damaged, read_records, segments
from tracker.store.mlflow_internals import MAX_PARAMS_TAGS_PER_BATCH


class LogReader:
    """Reads one run's log from given positions on into `pending`."""

    def __init__(
        self,
        directory: Path,
        notify: TextIO,
        on_damage: Callable[[str, Path], None] = lambda where, kept: None,
    ) -> None:
        self.directory = directory
        self._notify = notify
        # Called with what is wrong and where the line is kept, for each damaged line.
        self._on_damage = on_damage
        self.positions: dict[str, int] = {}
        self.pending = Batch()
        self.pending_since = 0.0
        self.status: Record | None = None
        # An artifact upload read from the log: (segment, offset past its line, record). Its
        # line is acknowledged only once the files are uploaded.
        self.artifact: tuple[str, int, Record] | None = None
        self.set_aside: list[str] = []

    def restart(self, acknowledged: dict[str, int]) -> None:
        """Read on from what the store has acknowledged (after a restart, or another
        shipper's work)."""
        self.positions = dict(acknowledged)

    def take_pending(self) -> Batch:
        batch, self.pending = self.pending, Batch()
        return batch

    def fill(self, limit: int, threshold: int) -> str | None:
        """Read records into the pending batch: 'status', 'flush' or 'artifact' when such a
        record was read, 'full' when the batch holds `threshold` entries (or the next metric
        line would take it past `limit` points), None at the end of what the log holds."""
        pending = self.pending
        for seg in segments(self.directory):
            start = self.positions.get(seg.name, 0)
            try:
                if seg.stat().st_size <= start:
                    continue
                for end, record in read_records(seg, start):
                    kind = record.kind
                    if kind == "m" and len(pending.metrics) + len(record.points) > limit:
                        if len(pending):
                            return "full"  # this line starts the next batch
                    if kind == "p" and _changes(pending.params, record.items):
                        return "full"  # sent apart, so the store judges the change itself
                    if kind == "a":
                        self.artifact = (seg.name, end, record)
                        return "artifact"
                    if kind == "x":
                        self._keep(seg, record)
                        self.positions[seg.name] = end
                        continue
                    if not len(pending):
                        self.pending_since = _since(record)
                    self.positions[seg.name] = end
                    if kind == "m":
                        pending.metrics.extend(record.points)
                    elif kind == "p":
                        pending.params.update(record.items)
                    elif kind == "g":
                        pending.tags.update(record.items)
                    elif kind == "s":
                        self.status = record
                        return "status"
                    else:
                        return "flush"
                    small = len(pending.params) + len(pending.tags)
                    if len(pending) >= threshold or small >= MAX_PARAMS_TAGS_PER_BATCH:
                        return "full"
            except FileNotFoundError:
                continue  # deleted by the owner after a clean end
        return None

    def _keep(self, seg: Path, record: Record) -> None:
        assert record.damage is not None
        kept = keep_damaged(seg, record.raw)
        line = f"{record.damage}; the line is kept in {kept}"
        self.set_aside.append(line)
        self._on_damage(record.damage, kept)
        print(f"newsdesk: {line}", file=self._notify)


def _changes(params: dict[str, str], items: dict[str, str]) -> bool:
    """Whether `items` gives a param of the batch another value (merged, one would vanish)."""
    return any(key in params and params[key] != value for key, value in items.items())


def _since(record: Record) -> float:
    """When a batch that starts with `record` began waiting, on the monotonic clock: for
    points, when they were logged (their timestamp), so that a point that waited in the log
    while the shipper slept is not made to wait a whole `flush_interval_s` more once read;
    for anything else, now."""
    now = time.monotonic()
    if record.kind != "m" or not record.points:
        return now
    age = time.time() - record.points[0][2] / 1000.0
    return now - min(max(age, 0.0), 3600.0)
