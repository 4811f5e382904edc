"""The one reader of spool files that newsdesk 0.1 versions before the write-ahead log left
behind; `newsdesk sync` still replays them. Nothing writes this format any more (a logger
leaves its write-ahead log, `tracker.shipping.wal`); it goes in a later 0.x (see CHANGELOG).

One JSON-lines file per closed logger: a header naming the store and run, then chunks of
metrics, params and tags, and the run's terminal status. `sync` renames a replayed file to
`*.synced`; together with MLflow's own deduplication of identical points this makes a replay
exactly-once even when `sync` is interrupted and run again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tracker.shipping.batch import Batch
from tracker.shipping.wal import CORRUPT_SUFFIX

SPOOL_SUFFIX = ".jsonl"
SYNCED_SUFFIX = ".synced"


@dataclass
class SpoolContent:
    """What one spool file holds."""

    tracking_uri: str
    run_id: str
    batch: Batch = field(default_factory=Batch)
    status: str | None = None
    end_time: int | None = None


class SpoolError(ValueError):
    """A spool file that cannot be read; the message names the file, line and byte offset."""


def _metric_point(item: object) -> tuple[str, float, int, int]:
    key, value, ts, step = item  # type: ignore[misc]
    if not isinstance(key, str) or isinstance(value, str | bool):
        raise TypeError(f"not a metric point: {item!r}"[:120])
    return key, float(value), int(ts), int(step)


def _string_map(items: object) -> dict[str, str]:
    if not isinstance(items, dict):
        raise TypeError(f"expected an object of names to values, got {type(items).__name__}")
    return {str(k): str(v) for k, v in items.items()}


def _apply(content: SpoolContent, record: dict) -> None:
    kind = record["type"]
    if kind == "metrics":
        content.batch.metrics.extend(_metric_point(item) for item in record["items"])
    elif kind == "params":
        content.batch.params.update(_string_map(record["items"]))
    elif kind == "tags":
        content.batch.tags.update(_string_map(record["items"]))
    elif kind == "status":
        content.status, content.end_time = str(record["status"]), record["end_time"]
        if content.end_time is not None:
            content.end_time = int(content.end_time)
    else:
        raise ValueError(f"unknown record type {kind!r}")


def read_spool(path: Path) -> SpoolContent:
    """Parse a spool file; any damage (garbage bytes, a record of the wrong shape) is a
    `SpoolError` naming the file, the line and the byte offset where the bad record starts."""
    content: SpoolContent | None = None
    offset = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno} (byte {offset})"
            offset += len(raw)
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise TypeError(f"expected a JSON object, got {type(record).__name__}")
                if record.get("type") == "header":
                    content = SpoolContent(str(record["tracking_uri"]), str(record["run_id"]))
                elif content is None:
                    raise ValueError("record before the header")
                else:
                    _apply(content, record)
            except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise SpoolError(f"{where}: not a spool record ({detail})") from None
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


def set_aside_spool(path: Path) -> Path:
    """Rename a damaged spool file out of the pending set (kept for inspection)."""
    aside = path.with_suffix(CORRUPT_SUFFIX)
    path.rename(aside)
    return aside
