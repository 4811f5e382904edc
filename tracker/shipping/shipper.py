"""The shipping rules: from what a `LogReader` read to what the store acknowledged.

A `Shipper` sends the pending batch through its `Sender` in requests that fit the store, side
by side where the store takes several at once; retries what failed with a backoff that
`flush` and `close` cut short; splits a refused batch into the parts the store judges one by
one and keeps the refused ones in the rejected file; uploads artifacts in log order; ends the
run with the status the log holds. It is driven by `tracker.shipping.live` (the forked child
that follows a training) and `tracker.shipping.sync` (`newsdesk sync`).

Exactly once: after each batch the store accepted, `state.json` records how far each segment
is acknowledged; a batch is sent again only when it was not acknowledged, and the store
recognises its points (same key, timestamp, step and value).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from mlflow.tracking import MlflowClient

from tracker.schema import DAMAGED_TAG, PROCESS_DIED_TAG, REJECTED_TAG
from tracker.shipping.batch import Batch, chunks, separate
from tracker.shipping.config import WriterConfig
from tracker.shipping.reader import LogReader
from tracker.shipping.rejected import reject_batch, reject_upload
from tracker.shipping.sender import MlflowSender, Sender
from tracker.shipping.wake import sleep_until_woken
from tracker.shipping.wal import Record, read_meta, read_state, segments, write_state

GiveUp = Callable[[], bool]


class ShipError(RuntimeError):
    """The store did not take a run's log; the message names the log folder."""


class Shipper:
    """Ships one run's log through `sender`; the same rules for the live child and `sync`."""

    def __init__(
        self,
        directory: Path,
        config: WriterConfig,
        sender: Sender,
        *,
        notify: TextIO | None = None,
    ) -> None:
        self.directory = directory
        self.meta = read_meta(directory)
        self.config = config
        self._notify = notify if notify is not None else sys.stderr
        self.sender = sender
        # Metric requests sent side by side (a tracking server only); made on first use,
        # in the process that ships (the live shipper is forked).
        self._parallel = config.parallel_requests if sender.parallel else 1
        self._pool: ThreadPoolExecutor | None = None
        self.state = read_state(directory)
        self.reader = LogReader(directory, self._notify, self._damaged)
        self.reader.restart(self.state.acked)
        self.points_shipped = 0
        self.kept_status = False
        self.ended_run = False
        self.answered_at = time.monotonic()  # the store's last accepted request

    @classmethod
    def to_mlflow(
        cls,
        directory: Path,
        config: WriterConfig,
        *,
        tracking_uri: str | None = None,
        notify: TextIO | None = None,
    ) -> Shipper:
        """A shipper of the log in `directory` to its MLflow store (or `tracking_uri`)."""
        meta = read_meta(directory)
        client = MlflowClient(tracking_uri=tracking_uri or meta.tracking_uri)
        return cls(directory, config, MlflowSender(client, meta.run_id), notify=notify)

    def _damaged(self, where: str, kept: Path) -> None:
        state = self.state
        state.damaged += 1
        state.damaged_path = str(kept)
        state.damaged_first = state.damaged_first or where

    @property
    def set_aside(self) -> list[str]:
        return self.reader.set_aside

    def reload(self) -> None:
        """Start again from the state on disk (an earlier shipper may have moved on)."""
        self.state = read_state(self.directory)
        self.reader.restart(self.state.acked)
        self.answered_at = time.monotonic()

    def fill(self) -> str | None:
        """Read the log into the pending batch (see `LogReader.fill`)."""
        limit = self.config.batch_size * self._parallel  # `chunks` splits it into requests
        return self.reader.fill(limit, min(self.config.wake_threshold, limit))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # ----- sending ----------------------------------------------------------------------------
    def ship_pending(self, give_up: GiveUp) -> bool:
        """Send the pending batch (retrying while `give_up()` is False); True once the store
        took it or refused parts of it for good, and the log positions are acknowledged."""
        batch = self.reader.pending
        pieces = list(chunks(batch))
        if self._parallel > 1 and sum(1 for p in pieces if p.metrics) > 1:
            pieces = self._send_side_by_side(pieces)
        for piece in pieces:
            if not self._send_piece(piece, give_up):
                write_state(self.directory, self.state)
                return False
        self.points_shipped += len(batch.metrics)
        self.reader.take_pending()
        self.state.acked.update(self.reader.positions)
        self._delete_shipped_segments()
        write_state(self.directory, self.state)
        return True

    def _delete_shipped_segments(self) -> None:
        """Delete the segments the store has taken whole and their writer has left (it
        writes only its newest one), so that the log holds about what is not stored yet.
        Each is deleted before its acknowledgement is forgotten: a crash in between leaves
        an entry for a file that is gone, never a file read again from its start."""
        found = segments(self.directory)
        newest = {seg.stem.rsplit("-", 1)[-1]: seg.name for seg in found}  # per writer pid
        for seg in found:
            if seg.name == newest[seg.stem.rsplit("-", 1)[-1]]:
                continue
            try:
                if self.state.acked.get(seg.name, 0) < seg.stat().st_size:
                    continue
                seg.unlink()
            except FileNotFoundError:
                pass
            self.state.acked.pop(seg.name, None)
            self.reader.positions.pop(seg.name, None)

    def _send_side_by_side(self, pieces: list[Batch]) -> list[Batch]:
        """Send the metric pieces at once, each tried once; returns what is left to send one
        by one (with retries and the separation of refused entries): the pieces that failed,
        then the params and tags. Re-sending a piece the store did take is harmless: it
        recognises the points."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="ship")
        metric_pieces = [p for p in pieces if p.metrics]

        def attempt(piece: Batch) -> bool:
            try:
                self.sender.send(piece.metrics, {}, {})
            except Exception:  # noqa: BLE001 - retried one by one, where errors are handled
                return False
            return True

        left: list[Batch] = []
        sent_all = self._pool.map(attempt, metric_pieces)
        for piece, sent in zip(metric_pieces, sent_all, strict=True):
            if sent:
                self.state.stored += len(piece.metrics)
                self.state.last_error = None
            else:
                left.append(piece)
        return left + [p for p in pieces if not p.metrics]

    def _send_piece(self, piece: Batch, give_up: GiveUp) -> bool:
        def refused(error: str) -> bool:
            parts = separate(piece)
            if len(parts) > 1:  # find the entries it refused; send the rest
                return all(self._send_piece(part, give_up) for part in parts)
            reject_batch(self.state, self.directory.parent, self.meta.run_id, piece, error)
            return True

        def send() -> None:
            self.sender.send(piece.metrics, piece.params, piece.tags)
            self.state.stored += len(piece.metrics)

        return self._retrying(send, refused, give_up)

    def _retrying(
        self, action: Callable[[], None], refused: Callable[[str], bool], give_up: GiveUp
    ) -> bool:
        """Run `action` until it succeeds (True), the store refuses it for good (then
        `refused(error)` decides), or `give_up()` says stop trying (False)."""
        delay = self.config.backoff_initial_s
        while True:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - every store error is retried or kept
                error = f"{type(exc).__name__}: {exc}"
                self.state.last_error = error
                self.state.failures += 1
                if self.sender.is_permanent(exc):
                    return refused(error)
                if give_up():
                    return False
                write_state(self.directory, self.state)  # the owner shows the reason
                sleep_until_woken(delay)  # cut short by `flush` and `close`
                delay = min(delay * 2, self.config.backoff_max_s)
                continue
            self.state.last_error = None
            self.answered_at = time.monotonic()
            return True

    def ship_artifact(self, give_up: GiveUp) -> bool:
        """Upload the artifact read last (the points before it are stored), then acknowledge
        its line and delete the copy. Uploading again after a crash before the
        acknowledgement writes the same files again."""
        assert self.reader.artifact is not None
        segment, end, record = self.reader.artifact
        folder = self.directory / str(record.folder)

        def refused(error: str) -> bool:
            run_id, spool_dir = self.meta.run_id, self.directory.parent
            reject_upload(self.state, spool_dir, run_id, folder, record.artifact_path, error)
            return True

        if folder.is_dir():

            def upload() -> None:
                self.sender.upload(folder, record.artifact_path)

            if not self._retrying(upload, refused, give_up):
                write_state(self.directory, self.state)
                return False
        else:  # uploaded and acknowledged, then the state file was lost: nothing to redo
            print(f"newsdesk: {folder} is gone; its upload is skipped", file=self._notify)
        self.reader.positions[segment] = end
        self.state.acked.update(self.reader.positions)
        write_state(self.directory, self.state)
        shutil.rmtree(folder, ignore_errors=True)
        self.reader.artifact = None
        return True

    # ----- ending -----------------------------------------------------------------------------
    def apply_status(self, record: Record) -> None:
        """End the run with the status the log holds; FAILED instead of FINISHED when the
        store refused part of what it logged."""
        status = record.status or "FINISHED"
        state = self.state
        if (state.rejected or state.damaged) and status == "FINISHED":
            status = "FAILED"  # not cleanly finished: part of what it logged is missing
        if state.rejected:
            self.sender.set_tag(REJECTED_TAG, f"{state.rejected} entries: {state.rejected_first}")
        if state.damaged:
            self.sender.set_tag(
                DAMAGED_TAG,
                f"{state.damaged} damaged lines of its log, kept in {state.damaged_path}: "
                f"{state.damaged_first}",
            )
        if self.sender.end_run(status, record.end_time):
            state.status_applied = status
            self.ended_run = True
        else:
            self.kept_status = True
        self.reader.status = None
        self.state.acked.update(self.reader.positions)
        write_state(self.directory, state)

    def end_abandoned(self) -> None:
        """The process that wrote the log died without closing its logger."""
        if self.sender.run_is_open():
            self.sender.set_tag(
                PROCESS_DIED_TAG,
                f"process {self.meta.owner_pid} ended without closing its logger "
                f"(killed?); {self._what_was_shipped()}",
            )
            self.apply_status(Record("s", status="FAILED", end_time=int(time.time() * 1000)))

    def _what_was_shipped(self) -> str:
        state = self.state
        if not (state.rejected or state.damaged):
            return "every point it logged was shipped"
        missing = [f"{state.rejected} refused by the store"] if state.rejected else []
        missing += [f"{state.damaged} damaged lines of its log"] if state.damaged else []
        return f"what it logged was shipped but {' and '.join(missing)}"

    def finish(self, *, owner_gone: bool = False) -> None:
        """Everything is shipped and the run ended. The owner deletes the log once it has
        read the outcome; with no owner left, the shipper deletes it."""
        self.state.done = True
        write_state(self.directory, self.state)
        if owner_gone:
            shutil.rmtree(self.directory, ignore_errors=True)
