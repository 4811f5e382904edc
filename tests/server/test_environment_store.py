"""`MLFLOW_TRACKING_URI` naming a tracking server: every run of `--model all` lands there.

Before the fix, model logging reset MLflow's global tracking URI on exit, which deleted the
variable from the process environment, and the second and third runs went to the embedded
SQLite store in the working directory. This is the team-server recipe of the README, run as a
user runs it: one `newsdesk` process with only the environment variable set.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL_MODELS, newsdesk_command
from tracker import schema

pytestmark = pytest.mark.server


def test_model_all_with_the_environment_variable_puts_every_run_on_the_server(
    pg_server, thucnews_slice, tmp_path
):
    env = {**os.environ, "MLFLOW_TRACKING_URI": pg_server.config.url}
    args = ["train", "--model", "all", "--data", str(thucnews_slice), "--max-steps", "6"]
    proc = subprocess.run(
        newsdesk_command(*args, "--quiet", *SMALL_MODELS),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(tracking_uri=pg_server.config.url)
    experiment = client.get_experiment_by_name("newsdesk")
    runs = client.search_runs([experiment.experiment_id])
    print(f"runs on the server: {sorted(r.data.tags[schema.MODEL_TAG] for r in runs)}")
    assert sorted(r.data.tags[schema.MODEL_TAG] for r in runs) == [
        "fasttext",
        "linear",
        "lstm",
        "textcnn",
    ]
    assert all(r.info.status == "FINISHED" and r.outputs.model_outputs for r in runs)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # nothing went to a local store
