"""The file of entries a store refused for good: kept for the user to inspect, never replayed.

One JSON line per refused part, with the store's error; a refused artifact upload is a line
naming where its files are kept and their artifact path. The file lies beside the run logs,
named after the run, so it outlives the log that is deleted once everything else is shipped.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tracker.shipping.batch import Batch
from tracker.shipping.wal import ShipState

REJECTED_SUFFIX = ".rejected"


def rejected_path(directory: Path, run_id: str) -> Path:
    return directory / f"{run_id}-{time.strftime('%Y%m%dT%H%M%S')}{REJECTED_SUFFIX}"


def write_rejected(
    path: Path,
    rejected: list[tuple[Batch, str]],
    *,
    artifacts: list[tuple[str, str | None, str]] = (),
) -> Path:
    """Append the refused entries (`(batch, error)`) and refused uploads (`(files,
    artifact_path, error)`) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for files, artifact_path, error in artifacts:
            record = {"error": error, "artifact": {"files": files, "path": artifact_path}}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        for batch, error in rejected:
            record = {
                "error": error,
                "metrics": [list(p) for p in batch.metrics],
                "params": batch.params,
                "tags": batch.tags,
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def reject_batch(state: ShipState, spool_dir: Path, run_id: str, batch: Batch, error: str) -> None:
    """Keep a refused batch in the run's rejected file and count it in `state`."""
    write_rejected(_file(state, spool_dir, run_id, error), [(batch, error)])
    state.rejected += len(batch)


def reject_upload(
    state: ShipState,
    spool_dir: Path,
    run_id: str,
    folder: Path,
    artifact_path: str | None,
    error: str,
) -> None:
    """Keep the files of a refused upload beside the rejected file, and say where."""
    path = _file(state, spool_dir, run_id, error)
    kept = path.with_name(f"{path.name}-{folder.name}")
    shutil.move(folder, kept)
    write_rejected(path, [], artifacts=[(str(kept), artifact_path, error)])
    state.rejected += 1


def _file(state: ShipState, spool_dir: Path, run_id: str, error: str) -> Path:
    """The run's rejected file, named (with the first error) on the first refusal."""
    if state.rejected_path is None:
        state.rejected_path = str(rejected_path(spool_dir, run_id))
        state.rejected_first = error.splitlines()[0][:200]
    return Path(state.rejected_path)
