"""A check, before any work, that the tracking store takes our credentials.

Training a model for minutes and then failing on the first write because the password was
wrong loses the user's time; so the commands that write ask the store once, up front, and turn
a refusal into one line.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.store.location import resolve_store


class AccessDenied(ValueError):
    """The tracking server refused our credentials (HTTP 401) or permissions (403)."""


def check_write_access(tracking_uri: str | None = None) -> None:
    """Raise `AccessDenied` with one line when the server refuses; other errors pass through."""
    uri = resolve_store(tracking_uri).tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except MlflowException as exc:
        status = exc.get_http_status_code()
        if status == 401:
            raise AccessDenied(
                f"the tracking server {uri} refused the credentials (HTTP 401): check "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            ) from None
        if status == 403:
            raise AccessDenied(
                f"the tracking server {uri} denied access (HTTP 403): the user lacks permission"
            ) from None
        raise
