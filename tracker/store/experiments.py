"""Looking up and creating experiments, safe against several processes racing to create one."""

from __future__ import annotations

import re

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.store.location import redact

# The MLflow UI opens an experiment in its GenAI (traces) view unless the experiment says it
# holds model training; newsdesk experiments do, so they open on the runs table and charts.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


def artifact_folder(name: str) -> str:
    """The experiment's folder under the artifact root: its name made safe as one path
    component (separators and other punctuation become `_`, no leading dots), so that no name,
    `../../elsewhere` included, can put artifacts outside the store's folder."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "experiment"


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Return the id of experiment `name`, creating it (with `artifact_root`) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
            )
        return experiment.experiment_id
    location = f"{artifact_root}/{artifact_folder(name)}" if artifact_root else None
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
        )
    except MlflowException:
        # Another process created it between our lookup and our create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def require_experiment(client: MlflowClient, name: str) -> str:
    """The id of an existing experiment; ValueError with the known names when there is none."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        known = sorted(e.name for e in client.search_experiments())
        raise ValueError(
            f"unknown experiment {name!r} in {redact(client.tracking_uri)}; known experiments: "
            f"{', '.join(known) or 'none'}"
        )
    return experiment.experiment_id
