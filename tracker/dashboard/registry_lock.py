"""A mutex in the registry's own store, so that two promotions never interleave.

MLflow's registry has no compare-and-set, but creating a registered model is atomic: the
store's unique name constraint lets exactly one of two concurrent creates succeed, on SQLite,
on PostgreSQL and through a tracking server alike. The lock is therefore a registered model
named `<model>.promotion-lock`, created to take it and deleted to release it; it works for
promotions on several machines, where a file lock would not. A holder that died leaves a lock
that is broken once it is older than `stale_after_s`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

LOCK_SUFFIX = ".promotion-lock"


# A create that loses the race fails with RESOURCE_ALREADY_EXISTS, or with
# RESOURCE_DOES_NOT_EXIST: on a name clash MLflow's SQL store looks the existing model up to
# word its error, and if the holder released the lock in between, that lookup fails instead.
# Both mean "not ours this time"; the next try may take it.
_LOCK_TAKEN_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"})


class RegistryBusy(ValueError):
    """Another promotion held the lock for longer than we were willing to wait."""


def _delete(client: MlflowClient, name: str) -> None:
    try:
        client.delete_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


@contextmanager
def promotion_lock(
    client: MlflowClient,
    model_name: str,
    *,
    timeout_s: float = 120.0,
    stale_after_s: float = 300.0,
    poll_s: float = 0.2,
) -> Iterator[None]:
    """Hold the promotion lock of `model_name` for the duration of the block."""
    lock = f"{model_name}{LOCK_SUFFIX}"
    holder = f"newsdesk promote on {socket.gethostname()}, pid {os.getpid()}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.create_registered_model(lock, description=f"held by {holder}")
            break
        except MlflowException as exc:
            if exc.error_code not in _LOCK_TAKEN_CODES:
                raise
        _break_if_stale(client, lock, stale_after_s)
        if time.monotonic() > deadline:
            raise RegistryBusy(
                f"another promotion of {model_name} has held its lock ({lock}) for over "
                f"{timeout_s:.0f}s; try again later"
            )
        time.sleep(poll_s)
    try:
        yield
    finally:
        _delete(client, lock)


def _break_if_stale(client: MlflowClient, lock: str, stale_after_s: float) -> None:
    try:
        held = client.get_registered_model(lock)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return  # released meanwhile: the next try takes it
        raise
    age_s = time.time() - held.creation_timestamp / 1000
    if age_s > stale_after_s:
        _delete(client, lock)
