"""What the shipper sends: batches, the limits and retry settings, and which store errors
are final.

Exactly once: a point carries the timestamp taken when it was handed over, so a batch that is
sent again after an ambiguous failure is recognised by MLflow's store, which deduplicates on
(key, timestamp, step, value).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from tracker.store.mlflow_internals import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
)

MetricPoint = tuple[str, float, int, int]  # (key, value, timestamp_ms, step)

# Error codes (as `MlflowException.error_code` names them) that say the store understood the
# request and refused it: sending it again cannot help.
_PERMANENT_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "INVALID_STATE",
        "RESOURCE_DOES_NOT_EXIST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)


# File errors of a local artifact store that waiting does not fix (a file where a folder
# should be, no permission, a read-only disk); a full disk (ENOSPC) is retried.
_PERMANENT_ERRNOS = frozenset(
    {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}
)


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: the store understood the request and said no, or the
    local artifact folder cannot take the file."""
    if isinstance(exc, MlflowException):
        return exc.error_code in _PERMANENT_CODES
    return isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS


@dataclass(frozen=True)
class WriterConfig:
    """Tuning of the log and its shipper; the defaults suit both SQLite and a tracking server."""

    # A batch is sent when this long has passed since its first point was read...
    flush_interval_s: float = 1.0
    # ...or when it holds `wake_threshold` entries, or as many as `parallel_requests`
    # requests of at most `batch_size` entries hold, whichever is fewer.
    batch_size: int = MAX_ENTITIES_PER_BATCH
    wake_threshold: int = 100_000
    # A tracking server (HTTP) is sent up to this many metric requests at once while the log
    # is behind: each request waits on the server's database, and its workers take them side
    # by side. A database store gets one bulk statement instead.
    parallel_requests: int = 4
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 5.0
    # How long `close` waits for the store without progress: every accepted batch restarts
    # the clock, so a long but healthy drain is never cut short.
    close_timeout_s: float = 30.0
    # A segment file of the log is closed and a new one started past this size; shipped
    # segments are deleted, so the disk holds about what the store has not taken yet.
    segment_bytes: int = 16 << 20
    # After the training process died, how long its shipper keeps retrying a store that does
    # not answer before it leaves the rest to `newsdesk sync`.
    orphan_patience_s: float = 300.0
    # The shipper runs at this `nice` increment, below the training loop.
    shipper_niceness: int = 10


@dataclass
class Batch:
    """One `log_batch` request being assembled or retried."""

    metrics: list[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def extend(self, other: Batch) -> None:
        self.metrics.extend(other.metrics)
        self.params.update(other.params)
        self.tags.update(other.tags)


def separate(batch: Batch) -> list[Batch]:
    """A refused batch as parts the store judges one by one: all its metric points together
    (they were validated at the call, so the store refuses them only as a whole, e.g. a
    deleted run), then each param and each tag alone. One part means nothing to separate."""
    pieces = [Batch(metrics=batch.metrics)] if batch.metrics else []
    pieces += [Batch(params={key: value}) for key, value in batch.params.items()]
    pieces += [Batch(tags={key: value}) for key, value in batch.tags.items()]
    return pieces


def chunks(batch: Batch) -> Iterator[Batch]:
    """Split a batch into pieces that each fit one `log_batch` request."""
    for start in range(0, len(batch.metrics), MAX_METRICS_PER_BATCH):
        yield Batch(metrics=batch.metrics[start : start + MAX_METRICS_PER_BATCH])
    for kind in ("params", "tags"):
        items = list(getattr(batch, kind).items())
        for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            piece = Batch()
            setattr(piece, kind, dict(items[start : start + MAX_PARAMS_TAGS_PER_BATCH]))
            yield piece
