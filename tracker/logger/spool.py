"""Spool files: what a logger could not store before it closed, kept on disk for `newsdesk sync`.

One JSON-lines file per closed logger: a header naming the store and run, then chunks of
metrics, params and tags, and the run's terminal status. A file is written to a temporary name
and renamed, so a crash never leaves half a spool. `sync` renames a replayed file to
`*.synced`; together with MLflow's own deduplication of identical points this makes a replay
exactly-once even when `sync` is interrupted and run again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracker.logger.writer import Batch
from tracker.store.mlflow_internals import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

SPOOL_SUFFIX = ".jsonl"
SYNCED_SUFFIX = ".synced"
FORMAT_VERSION = 1


@dataclass
class SpoolContent:
    """What one spool file holds."""

    tracking_uri: str
    run_id: str
    batch: Batch = field(default_factory=Batch)
    status: str | None = None
    end_time: int | None = None


def write_spool(directory: Path, content: SpoolContent) -> Path:
    """Write `content` atomically under `directory` and return the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{content.run_id}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    final = directory / f"{name}{SPOOL_SUFFIX}"
    tmp = directory / f".{name}.tmp"
    header = {
        "type": "header",
        "version": FORMAT_VERSION,
        "tracking_uri": content.tracking_uri,
        "run_id": content.run_id,
    }
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        metrics = content.batch.metrics
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            chunk = [list(p) for p in metrics[start : start + MAX_METRICS_PER_BATCH]]
            fh.write(json.dumps({"type": "metrics", "items": chunk}) + "\n")
        for kind, values in (("params", content.batch.params), ("tags", content.batch.tags)):
            if values:
                fh.write(json.dumps({"type": kind, "items": values}, ensure_ascii=False) + "\n")
        if content.status is not None:
            record = {"type": "status", "status": content.status, "end_time": content.end_time}
            fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(final)
    return final


class SpoolError(ValueError):
    """A spool file that cannot be read; the message names the file and line."""


def read_spool(path: Path) -> SpoolContent:
    content: SpoolContent | None = None
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
                kind = record["type"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise SpoolError(f"{path}:{lineno}: not a spool record ({exc})") from None
            if kind == "header":
                content = SpoolContent(record["tracking_uri"], record["run_id"])
            elif content is None:
                raise SpoolError(f"{path}:{lineno}: record before the header")
            elif kind == "metrics":
                content.batch.metrics.extend(
                    (str(k), float(v), int(ts), int(step)) for k, v, ts, step in record["items"]
                )
            elif kind == "params":
                content.batch.params.update(record["items"])
            elif kind == "tags":
                content.batch.tags.update(record["items"])
            elif kind == "status":
                content.status, content.end_time = record["status"], record["end_time"]
            else:
                raise SpoolError(f"{path}:{lineno}: unknown record type {kind!r}")
    if content is None:
        raise SpoolError(f"{path}: empty spool file")
    return content


def pending_spools(directory: Path) -> list[Path]:
    """Spool files not yet replayed, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SPOOL_SUFFIX}"), key=lambda p: p.stat().st_mtime)


def mark_synced(path: Path) -> Path:
    done = path.with_suffix(SYNCED_SUFFIX)
    path.rename(done)
    return done


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
