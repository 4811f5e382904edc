"""Spool files as newsdesk versions before the write-ahead log wrote them: `newsdesk sync`
still replays them (`tracker.shipping.legacy_spool` reads them), and only tests write them."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from tracker.shipping.batch import Batch
from tracker.shipping.legacy_spool import SPOOL_SUFFIX, SpoolContent
from tracker.store.mlflow_internals import MAX_METRICS_PER_BATCH

FORMAT_VERSION = 1

__all__ = ["Batch", "SpoolContent", "write_spool"]


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
