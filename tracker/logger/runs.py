"""Opening the run a `TrainingLogger` logs to: a new run, or an existing one continued.

A new run gets newsdesk's system tags and a run key chosen before the request, so that the
copies a lost response makes on a tracking server can be found and removed. An existing run
must belong to the logger's experiment, and is set RUNNING again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from mlflow.entities import RunStatus as MlflowRunStatus
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from tracker.interface import RunStatus
from tracker.logger.run_tags import system_tags
from tracker.logger.validation import validate_tag_name
from tracker.schema import PARENT_RUN_TAG, RUN_KEY_TAG
from tracker.store.experiments import ensure_experiment
from tracker.store.location import StoreLocation


def create_run(
    client: MlflowClient,
    location: StoreLocation,
    experiment: str,
    run_name: str | None,
    tags: Mapping[str, Any] | None,
    parent_run_id: str | None = None,
) -> str:
    """Create a run in `experiment` (made if missing); returns its id. With `parent_run_id`,
    the run is nested under that run (MLflow's own tag, which the UI shows)."""
    if parent_run_id is not None:
        tags = {**(tags or {}), PARENT_RUN_TAG: parent_run_id}
    experiment_id = ensure_experiment(client, experiment, location.artifact_root)
    all_tags = system_tags()
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    for key in all_tags:
        validate_tag_name(key)
    run_key = uuid.uuid4().hex
    all_tags[RUN_KEY_TAG] = run_key
    remote = location.tracking_uri.startswith(("http://", "https://"))
    try:
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    except Exception:
        if remote:  # every response lost: the server may still have made the run, or several
            with contextlib.suppress(Exception):
                _drop_duplicate_creates(client, experiment_id, None, run_key)
        raise
    if remote:
        _drop_duplicate_creates(client, experiment_id, run.info.run_id, run_key)
    return run.info.run_id


def _drop_duplicate_creates(
    client: MlflowClient, experiment_id: str, run_id: str | None, run_key: str
) -> None:
    """MLflow's HTTP client sends a POST again when its response was lost, and the server
    then made the run twice. The run key finds every copy; the one we were given (`run_id`;
    None when the create failed for the client) is kept, the others, which hold nothing but
    their tags, are ended and deleted so that no orphan stays RUNNING. (An embedded store
    makes exactly one run per call.)"""
    copies = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
        run_view_type=ViewType.ALL,
    )
    for copy in copies:
        if copy.info.run_id != run_id:
            client.set_terminated(copy.info.run_id, status=RunStatus.KILLED.value)
            client.delete_run(copy.info.run_id)


def reopen_run(
    client: MlflowClient, experiment: str, run_id: str, tags: Mapping[str, Any] | None
) -> str:
    """Continue run `run_id` of `experiment`: RUNNING again, with `tags` added."""
    run = client.get_run(run_id)
    exp = client.get_experiment(run.info.experiment_id)
    if exp.name != experiment:
        raise ValueError(f"run {run_id} belongs to experiment {exp.name!r}, not {experiment!r}")
    if run.info.status != MlflowRunStatus.to_string(MlflowRunStatus.RUNNING):
        client.update_run(run_id, status="RUNNING")
    for key, value in (tags or {}).items():
        validate_tag_name(key)
        client.set_tag(run_id, key, str(value))
    return run_id
