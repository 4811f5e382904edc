"""Ending a run from the training process itself, when its log cannot carry the end.

Normally the terminal status is the log's last line and the shipper applies it. These are the
two ways around that: the status could not be appended (a full disk), or the shipper could not
be kept alive to ship it.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tracker.interface import RunStatus
from tracker.schema import FAILURE_REASON_TAG, UNSHIPPED_TAG


def end_with_error(
    client: MlflowClient, run_id: str, status: RunStatus, end_time: int, error: OSError
) -> RunStatus:
    """End the run whose log could not take its end; FAILED rather than FINISHED (calls that
    raised were not logged), with `error` as its reason. Returns the status applied."""
    if status == RunStatus.FINISHED:
        status = RunStatus.FAILED
    client.set_tag(run_id, FAILURE_REASON_TAG, str(error))
    client.set_terminated(run_id, status.value, end_time)
    return status


def end_provisionally(client: MlflowClient, run_id: str, end_time: int, unshipped: str) -> None:
    """The store answers but the shipper could not be kept alive: the run is not left
    RUNNING. It ends FAILED, just before its own end (in the log), with what is missing in
    `UNSHIPPED_TAG`; `newsdesk sync` stores the rest, applies the log's end, which is newer,
    and removes the tag. When the store does not answer either, the run stays RUNNING until
    `sync` ends it."""
    try:
        client.set_tag(run_id, UNSHIPPED_TAG, unshipped)
        client.set_terminated(run_id, RunStatus.FAILED.value, end_time - 1)
    except Exception:  # noqa: BLE001, S110 - the message printed before says what to run
        pass
