"""A check, before any work, that the tracking store takes our credentials and our writes.

Training a model for minutes and then failing on the first write because the password was
wrong, or the user may only read, loses the user's time; so the commands that write ask the
store once, up front, and turn a refusal into one line.
"""

from __future__ import annotations

import os

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.store.experiments import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
from tracker.store.location import resolve_store


class AccessDenied(ValueError):
    """The tracking server refused our credentials (HTTP 401) or permissions (403)."""


def check_write_access(tracking_uri: str | None = None, experiment: str | None = None) -> None:
    """Raise `AccessDenied` with one line when the server refuses; other errors pass through.

    Reading proves the credentials. Writing is proved on `experiment` when it exists, with a
    write that changes nothing: the experiment-kind tag set to the value every newsdesk
    experiment has (MLflow's auth app asks the same EDIT permission of it as of creating a
    run). An experiment that does not exist yet is created by the user, who then owns it.
    """
    uri = resolve_store(tracking_uri).tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
        existing = client.get_experiment_by_name(experiment) if experiment else None
        if existing is not None:
            client.set_experiment_tag(
                existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
            )
    except MlflowException as exc:
        raise _denied(uri, exc, experiment) from None


def _denied(uri: str, exc: MlflowException, experiment: str | None) -> Exception:
    """`AccessDenied` in one line for a 401 or 403; `exc` itself for anything else."""
    status = exc.get_http_status_code()
    if status == 401:
        return AccessDenied(
            f"the tracking server {uri} refused the credentials (HTTP 401): check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if status == 403:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
        what = f"write experiment {experiment!r}" if experiment else "use this server"
        return AccessDenied(
            f"the tracking server {uri} does not let {user!r} {what} (HTTP 403): "
            "ask an admin for EDIT permission"
        )
    return exc
