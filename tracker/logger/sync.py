"""`newsdesk sync`: replay spool files into their stores, exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.tracking import MlflowClient

from tracker.logger.mlflow_logger import make_sender
from tracker.logger.spool import (
    SpoolContent,
    SpoolError,
    chunks,
    mark_synced,
    pending_spools,
    read_spool,
    set_aside,
)


@dataclass
class SyncReport:
    files: list[Path] = field(default_factory=list)
    points: int = 0
    runs: set[str] = field(default_factory=set)
    # One line per damaged file that was set aside (file, line, byte offset, what is wrong).
    set_aside: list[str] = field(default_factory=list)
    # Runs whose newer terminal status in the store was kept over the spooled one.
    kept_status: list[str] = field(default_factory=list)


def sync_spools(
    directory: Path, tracking_uri: str | None = None, *, run_id: str | None = None
) -> SyncReport:
    """Write every pending spool file under `directory` to its store, then mark it synced.

    `tracking_uri` overrides the store recorded in the files (a server that moved, say).
    A damaged file is renamed `*.corrupt` and reported, and the files after it still ship.
    The spooled terminal status is applied only when the store's is not newer: a run that
    was resumed and finished meanwhile stays FINISHED. A file whose replay fails (the store
    is down) stays pending; the exception names it. With `run_id`, only that run's files
    (what `newsdesk resume` ships before it looks at the store).
    """
    report = SyncReport()
    for path in pending_spools(directory):
        if run_id is not None and not path.name.startswith(run_id):
            continue
        try:
            content = read_spool(path)
        except SpoolError as exc:
            aside = set_aside(path)
            report.set_aside.append(f"{exc}; set aside as {aside.name}")
            continue
        if run_id is not None and content.run_id != run_id:
            continue
        client = MlflowClient(tracking_uri=tracking_uri or content.tracking_uri)
        send = make_sender(client, content.run_id)
        for piece in chunks(content.batch):
            send(piece.metrics, piece.params, piece.tags)
        if content.status is not None and not _apply_status(client, content):
            report.kept_status.append(content.run_id)
        mark_synced(path)
        report.files.append(path)
        report.points += len(content.batch.metrics)
        report.runs.add(content.run_id)
    return report


def _apply_status(client: MlflowClient, content: SpoolContent) -> bool:
    """End the run with the spooled status unless the store holds a newer end; True when
    the spooled status was applied."""
    info = client.get_run(content.run_id).info
    stored_end = info.end_time or 0
    still_open = info.status in (
        MlflowRunStatus.to_string(MlflowRunStatus.RUNNING),
        MlflowRunStatus.to_string(MlflowRunStatus.SCHEDULED),
    )
    if not still_open and stored_end >= (content.end_time or 0):
        return False
    client.set_terminated(content.run_id, status=content.status, end_time=content.end_time)
    return True
