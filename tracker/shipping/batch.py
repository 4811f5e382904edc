"""What the shipper sends: one batch of metric points, params and tags, and how a batch is cut
into requests or into the parts a store judges one by one.

Exactly once: a point carries the timestamp taken when it was handed over, so a batch that is
sent again after an ambiguous failure is recognised by MLflow's store, which deduplicates on
(key, timestamp, step, value).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tracker.store.mlflow_internals import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

MetricPoint = tuple[str, float, int, int]  # (key, value, timestamp_ms, step)


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
