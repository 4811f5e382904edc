"""`newsdesk sync`: replay spool files into their stores, exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.tracking import MlflowClient

from tracker.logger.mlflow_logger import make_sender
from tracker.logger.spool import chunks, mark_synced, pending_spools, read_spool


@dataclass
class SyncReport:
    files: list[Path] = field(default_factory=list)
    points: int = 0
    runs: set[str] = field(default_factory=set)


def sync_spools(directory: Path, tracking_uri: str | None = None) -> SyncReport:
    """Write every pending spool file under `directory` to its store, then mark it synced.

    `tracking_uri` overrides the store recorded in the files (a server that moved, say).
    Runs that were ended meanwhile are reopened for the replay and ended again with the
    spooled status. A file whose replay fails stays pending; the exception names it.
    """
    report = SyncReport()
    for path in pending_spools(directory):
        content = read_spool(path)
        client = MlflowClient(tracking_uri=tracking_uri or content.tracking_uri)
        running = MlflowRunStatus.to_string(MlflowRunStatus.RUNNING)
        if client.get_run(content.run_id).info.status != running:
            client.update_run(content.run_id, status=running)
        send = make_sender(client, content.run_id)
        for piece in chunks(content.batch):
            send(piece.metrics, piece.params, piece.tags)
        if content.status is not None:
            client.set_terminated(content.run_id, status=content.status, end_time=content.end_time)
        mark_synced(path)
        report.files.append(path)
        report.points += len(content.batch.metrics)
        report.runs.add(content.run_id)
    return report
