"""Dataset lineage: the splits a run trained and was tested on, as MLflow dataset inputs.

MLflow shows a run's datasets on its page (name, digest, source, schema, rows) and lets runs be
searched by them (`dataset.digest`), so two runs on different data are told apart without
reading params. The digest is the trainers' own hash of the split's contents (the one behind
the `data.fingerprint` tag), so the same data gets the same digest in every run.
"""

from __future__ import annotations

import json

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# MLflow's stores keep at most 36 characters of a digest; 16 hex digits of a SHA-256 are plenty.
DIGEST_LENGTH = 16
# MLflow's own tag for the role of a dataset in a run ("training", "eval", ...).
CONTEXT_TAG = "mlflow.data.context"
TEXT_LABEL_SCHEMA = {
    "mlflow_colspec": [
        {"type": "string", "name": "text", "required": True},
        {"type": "long", "name": "label", "required": True},
    ]
}


def dataset_entity(name: str, digest: str, source: str, num_rows: int) -> Dataset:
    """A text/label dataset read from a local file (or another URI)."""
    source_type = "http" if source.startswith(("http://", "https://")) else "local"
    return Dataset(
        name=name,
        digest=digest[:DIGEST_LENGTH],
        source_type=source_type,
        source=json.dumps({"uri" if source_type == "local" else "url": source}),
        schema=json.dumps(TEXT_LABEL_SCHEMA),
        profile=json.dumps({"num_rows": num_rows}),
    )


def log_dataset_input(
    client: MlflowClient,
    run_id: str,
    name: str,
    context: str,
    digest: str,
    source: str,
    num_rows: int,
) -> None:
    """Log one dataset input. Runs started at once on the same data race to insert the same
    dataset row (a unique-key error on PostgreSQL); the second try finds the row and links it."""
    inputs = [
        DatasetInput(
            dataset_entity(name, digest, source, num_rows), [InputTag(CONTEXT_TAG, context)]
        )
    ]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException:
        client.log_inputs(run_id, datasets=inputs)
