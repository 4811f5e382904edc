"""The store side of shipping: the `Sender` a `Shipper` is given, and MLflow's.

The shipper decides what to send, when, how often to retry and what to acknowledge; the
sender only talks to the store, one attempt per call, and says which errors are final. Kept
apart (as MLflow's `AsyncLoggingQueue` takes its `logging_func`, and wandb keeps its writer
and sender apart) so that the shipping rules are tested against a sender that a test drives,
and the MLflow sender against real stores.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from mlflow.entities import Metric, Param, RunTag
from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.schema import UNSHIPPED_TAG
from tracker.shipping.batch import MetricPoint
from tracker.store.mlflow_internals import insert_metrics, sql_engine

_OPEN = (
    MlflowRunStatus.to_string(MlflowRunStatus.RUNNING),
    MlflowRunStatus.to_string(MlflowRunStatus.SCHEDULED),
)

# Error codes (as `MlflowException.error_code` names them) that say the store understood the
# request and refused it: sending it again cannot help.
_PERMANENT_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "INVALID_STATE",
        "RESOURCE_DOES_NOT_EXIST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)

# File errors of a local artifact store that waiting does not fix (a file where a folder
# should be, no permission, a read-only disk); a full disk (ENOSPC) is retried.
_PERMANENT_ERRNOS = frozenset(
    {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}
)


class Sender(Protocol):
    """What a `Shipper` needs of one run in a store. Each call is one attempt: it returns
    when the store took it and raises otherwise; the shipper retries."""

    # Whether the store takes several requests at once (a tracking server's workers).
    parallel: bool

    def send(
        self, metrics: Sequence[MetricPoint], params: dict[str, str], tags: dict[str, str]
    ) -> None: ...

    def upload(self, folder: Path, artifact_path: str | None) -> None: ...

    def set_tag(self, key: str, value: str) -> None: ...

    def run_is_open(self) -> bool: ...

    def end_run(self, status: str, end_time: int | None) -> bool:
        """End the run with `status` unless the store holds a newer end; True when applied."""
        ...

    def is_permanent(self, exc: BaseException) -> bool:
        """True when retrying `exc` cannot help: the store understood and said no."""
        ...

    def single_attempts(self) -> contextlib.AbstractContextManager[None]:
        """While shipping: no retries inside the store's client (the shipper retries)."""
        ...


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: the store understood the request and said no, or the
    local artifact folder cannot take the file."""
    if isinstance(exc, MlflowException):
        return exc.error_code in _PERMANENT_CODES
    return isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS


class MlflowSender:
    """One run in an MLflow store, through an explicit `MlflowClient`: `log_batch`, except
    the metric points of a database-backed store, which go in bulk (`insert_metrics`: the
    same rows for a fraction of the CPU, which on a small machine is taken from the training
    loop)."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._engine = sql_engine(client)
        self.parallel = self._engine is None  # a tracking server takes several at once

    def send(
        self, metrics: Sequence[MetricPoint], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        if self._engine is not None and metrics:
            insert_metrics(self._engine, self.run_id, metrics)
            metrics = ()
            if not params and not tags:
                return
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )

    def upload(self, folder: Path, artifact_path: str | None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def run_is_open(self) -> bool:
        return self.client.get_run(self.run_id).info.status in _OPEN

    def end_run(self, status: str, end_time: int | None) -> bool:
        return apply_status(self.client, self.run_id, status, end_time)

    def is_permanent(self, exc: BaseException) -> bool:
        return is_permanent(exc)

    def single_attempts(self) -> contextlib.AbstractContextManager[None]:
        return mlflow_retries_off()


def apply_status(client: MlflowClient, run_id: str, status: str, end_time: int | None) -> bool:
    """End the run with `status` unless the store holds a newer end; True when applied (a
    provisional end, set with `UNSHIPPED_TAG` by a logger whose shipper died, is older)."""
    run = client.get_run(run_id)
    info = run.info
    if info.status not in _OPEN and (info.end_time or 0) >= (end_time or 0):
        return False
    client.set_terminated(run_id, status=status, end_time=end_time)
    if UNSHIPPED_TAG in run.data.tags:  # what it said was missing is stored now
        client.delete_tag(run_id, UNSHIPPED_TAG)
    return True


@contextlib.contextmanager
def mlflow_retries_off() -> Iterator[None]:
    """No HTTP retries inside MLflow's client while shipping, then the user's setting again.

    MLflow's backoff doubles up to 120 s (one `log_batch` to a dead server takes minutes to
    return): a store back from an outage was noticed up to two minutes late, `close` could
    not get an answer within its patience, and `newsdesk sync` took minutes to say the store
    was down. The shipper retries instead, at most `backoff_max_s` apart, and `flush` and
    `close` can cut its wait short. Shipping runs in the forked shipper, in `newsdesk sync`,
    or in the sync `newsdesk resume` starts with before anything else talks to the store, so
    the training's own requests keep the user's setting. MLflow reads the variable at each
    request; it has no per-client setting."""
    name = MLFLOW_HTTP_REQUEST_MAX_RETRIES.name
    previous = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
