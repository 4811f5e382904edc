"""The first request to a tracking server, bounded whatever the user's retry settings.

MLflow's client retries a refused connection or a 5xx answer with a backoff that doubles up
to two minutes: a command pointed at a server that is not running said nothing for five
minutes and then printed a raw urllib3 line. Each command (and each `TrainingLogger`) asks the
server's `/health` first, a few times within `FIRST_CONTACT_S`, and ends in one line that
names the URI and what to do. The store's own answers (a refused credential, an unknown run)
are left to the requests that follow.
"""

from __future__ import annotations

import time

from tracker.store.location import redact

# How long the first contact may take in all, and one attempt at most; a refused connection
# (nothing listening: a server not started, or restarting) is given less.
FIRST_CONTACT_S = 20.0
REFUSED_S = 5.0
ATTEMPT_S = 10.0
RETRY_PAUSE_S = 1.0


class StoreUnreachable(ConnectionError):
    """The tracking server did not answer the first request; the message says what to do."""


def check_server(tracking_uri: str, *, within_s: float = FIRST_CONTACT_S) -> None:
    """Raise `StoreUnreachable` when the tracking server at `tracking_uri` does not answer
    within `within_s` seconds (a database URI is not a server: nothing to ask)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    # MLflow's HTTP client sends the user's credentials and TLS settings as every later
    # request will; imported here, so a command on a local store does not load MLflow for it.
    from mlflow.tracking._tracking_service.utils import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(tracking_uri)
    started = time.monotonic()
    deadline = started + within_s
    while True:
        attempt = max(1.0, min(ATTEMPT_S, deadline - time.monotonic()))
        try:
            response = http_request(
                creds, "/health", "GET", max_retries=0, timeout=attempt, raise_on_status=False
            )
        except Exception as exc:  # noqa: BLE001 - every transport error means the same here
            reason = _reason(exc, attempt)
        else:
            if response.status_code < 500:
                return  # it answers; what it says of the requests themselves comes later
            reason = f"it answers HTTP {response.status_code}"
        now = time.monotonic()
        refused_long = reason == REFUSED and now - started >= min(REFUSED_S, within_s)
        if refused_long or now + RETRY_PAUSE_S >= deadline:
            raise StoreUnreachable(
                f"the tracking server {redact(tracking_uri)} does not answer ({reason}, for "
                f"{now - started:.0f}s); start it (newsdesk server), or point --tracking-uri "
                "or MLFLOW_TRACKING_URI at a running one (unset, runs go to the local store)"
            )
        time.sleep(RETRY_PAUSE_S)


REFUSED = "connection refused"


def _reason(exc: Exception, attempt: float) -> str:
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return REFUSED
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer within {attempt:.0f}s"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]
