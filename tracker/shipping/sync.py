"""`newsdesk sync`: ship what runs' write-ahead logs (and older spool files) still hold into
their stores, exactly once.

The same `Shipper` as the live child, driven by hand: everything the log holds is shipped
once, its statuses applied, and a run whose process died without closing ends FAILED. It
retries like the live shipper, with the store client's own retries off, until
`close_timeout_s` passes without an accepted request.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from tracker.processes import process_alive
from tracker.shipping.batch import chunks
from tracker.shipping.config import WriterConfig
from tracker.shipping.legacy_spool import (
    SpoolError,
    mark_synced,
    pending_spools,
    read_spool,
    set_aside_spool,
)
from tracker.shipping.sender import MlflowSender
from tracker.shipping.shipper import ShipError, Shipper
from tracker.shipping.wal import META_FILE, locked, pending_wals, read_meta

# How long `sync` waits for the shipper of a dead process to let go of its run's log.
ORPHAN_WAIT_S = 60.0
# How long `newsdesk sync` retries a store that takes nothing before it says so.
SYNC_PATIENCE_S = WriterConfig.close_timeout_s


@dataclass
class SyncReport:
    files: list[Path] = field(default_factory=list)
    points: int = 0
    runs: set[str] = field(default_factory=set)
    # One line per damaged file that was set aside (file, line, byte offset, what is wrong).
    set_aside: list[str] = field(default_factory=list)
    # Runs whose newer terminal status in the store was kept over the spooled one.
    kept_status: list[str] = field(default_factory=list)
    # Runs whose log another shipper holds (a run still training, or a dead process's
    # shipper still retrying a store that is down).
    busy: list[str] = field(default_factory=list)


def sync_spools(
    directory: Path,
    tracking_uri: str | None = None,
    *,
    run_id: str | None = None,
    wait_s: float = 0.0,
    patience_s: float = SYNC_PATIENCE_S,
) -> SyncReport:
    """Ship every run log under `directory` (see `ship_all`) and replay every pending
    spool file of earlier versions, then mark it synced.

    `tracking_uri` overrides the store recorded in the files (a server that moved, say).
    A damaged file is renamed `*.corrupt` and reported, and the files after it still ship.
    The spooled terminal status is applied only when the store's is not newer: a run that
    was resumed and finished meanwhile stays FINISHED. A file whose replay fails (the store
    is down) stays pending; the exception names it. With `run_id`, only that run's files
    (what `newsdesk resume` ships before it looks at the store); `wait_s` is how long to
    wait for a shipper that still holds a log (the dying process's, finishing its work);
    `patience_s` how long a store that takes nothing is retried before `ShipError`.
    """
    report = SyncReport()
    config = WriterConfig(close_timeout_s=patience_s)
    _sync_wals(directory, tracking_uri, run_id, wait_s, config, report)
    for path in pending_spools(directory):
        if run_id is not None and not path.name.startswith(run_id):
            continue
        try:
            content = read_spool(path)
        except SpoolError as exc:
            aside = set_aside_spool(path)
            report.set_aside.append(f"{exc}; set aside as {aside.name}")
            continue
        if run_id is not None and content.run_id != run_id:
            continue
        client = MlflowClient(tracking_uri=tracking_uri or content.tracking_uri)
        sender = MlflowSender(client, content.run_id)
        for piece in chunks(content.batch):
            sender.send(piece.metrics, piece.params, piece.tags)
        applied = content.status is not None and sender.end_run(content.status, content.end_time)
        if content.status is not None and not applied:
            report.kept_status.append(content.run_id)
        mark_synced(path)
        report.files.append(path)
        report.points += len(content.batch.metrics)
        report.runs.add(content.run_id)
    return report


def _sync_wals(
    directory: Path,
    tracking_uri: str | None,
    run_id: str | None,
    wait_s: float,
    config: WriterConfig,
    report: SyncReport,
) -> None:
    for log in pending_wals(directory):
        try:
            meta = read_meta(log)
            if run_id is not None and meta.run_id != run_id:
                continue
            shipper = Shipper.to_mlflow(log, config, tracking_uri=tracking_uri, notify=_Quiet())
        except FileNotFoundError:
            continue  # its shipper finished and deleted it just now
        # The shipper of a process that died is finishing its work: wait for it, and say so.
        owner_alive = process_alive(meta.owner_pid)
        wait = wait_s if owner_alive else max(wait_s, ORPHAN_WAIT_S)
        shipped = ship_all(shipper)
        if not shipped and wait > 0:
            if not owner_alive:
                print(
                    f"newsdesk: the shipper of process {meta.owner_pid}, which has ended, still "
                    f"holds the log of run {meta.run_id} ({log}); waiting up to {wait:.0f}s "
                    "for it to let go",
                    file=sys.stderr,
                )
            shipped = ship_all(shipper, wait_s=wait)
        if not shipped:
            report.busy.append(meta.run_id)
            continue
        report.set_aside.extend(shipper.set_aside)
        if shipper.kept_status:
            report.kept_status.append(meta.run_id)
        if shipper.points_shipped or shipper.ended_run:
            report.files.append(log)
        report.points += shipper.points_shipped
        report.runs.add(meta.run_id)
        if shipper.state.done:
            shutil.rmtree(log, ignore_errors=True)


def ship_all(shipper: Shipper, *, wait_s: float = 0.0) -> bool:
    """Ship everything the log holds, once, and apply its statuses; end the run FAILED when
    its process died without closing. False when another shipper holds the log (a live
    run). Raises `ShipError` when the store is down."""
    with contextlib.ExitStack() as stack:
        stack.callback(shipper.close)
        try:
            held = stack.enter_context(locked(shipper.directory, wait_s=wait_s))
        except FileNotFoundError:
            return True  # its shipper finished and deleted it meanwhile: nothing left
        if not held:
            return False
        if not (shipper.directory / META_FILE).is_file():
            return True  # deleted by the shipper we waited for: all shipped
        _ship_everything(shipper)
    return True


def _ship_everything(shipper: Shipper) -> None:
    shipper.reload()
    patience = shipper.config.close_timeout_s

    def give_up() -> bool:
        return time.monotonic() - shipper.answered_at >= patience

    reader = shipper.reader
    while True:
        trigger = shipper.fill()
        with shipper.sender.single_attempts():
            shipped = shipper.ship_pending(give_up)
            if shipped and reader.artifact is not None:
                shipped = shipper.ship_artifact(give_up)
        if not shipped:
            raise ShipError(
                f"{shipper.directory}: the store did not take run {shipper.meta.run_id} "
                f"({shipper.state.last_error}); run 'newsdesk sync' again later"
            )
        if trigger == "artifact":
            continue
        if trigger == "status" and reader.status is not None:
            shipper.apply_status(reader.status)
        elif trigger is None:
            break
    if shipper.state.status_applied is None and not shipper.kept_status:
        if process_alive(shipper.meta.owner_pid):
            return  # its process still runs (without a shipper): not ours to end
        shipper.end_abandoned()
    shipper.finish()


class _Quiet:
    """The report carries the lines; the shipper prints nothing itself during a sync."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
