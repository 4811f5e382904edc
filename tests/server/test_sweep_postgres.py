"""A sweep against the team's tracking server, its study in the team's PostgreSQL: two worker
processes share the study through Optuna's RDB storage on a real PostgreSQL."""

from __future__ import annotations

import uuid

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command, run_ok, run_refused
from tracker import schema

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _sweep(server_url: str, data, tmp_path, *extra: str) -> list[str]:
    return newsdesk_command(
        "sweep",
        "--model",
        "fasttext",
        "--trials",
        "2",
        "--data",
        str(data),
        "--tracking-uri",
        server_url,
        "--experiment",
        "team-sweep",
        "--max-steps",
        "15",
        "--set",
        "model.buckets=2000",
        "--set",
        "train.eval_every=5",
        "--quiet",
        "--no-system-metrics",
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    )


def test_a_sweep_on_the_team_server_keeps_its_study_in_postgresql(
    pg_server, postgres, thucnews_slice, tmp_path
):
    name = f"optuna_{uuid.uuid4().hex[:8]}"
    storage = postgres.create_database(name).replace("postgresql://", "postgresql+psycopg://")

    run_refused(
        _sweep(pg_server.url, thucnews_slice, tmp_path),
        "--storage URL is needed with a tracking server",
    )

    run_ok(
        _sweep(
            pg_server.url,
            thucnews_slice,
            tmp_path,
            "--jobs",
            "2",
            "--storage",
            storage,
            "--study",
            "team",
        ),
    )
    client = MlflowClient(tracking_uri=pg_server.url)
    runs = client.search_runs([client.get_experiment_by_name("team-sweep").experiment_id])
    parents = [r for r in runs if schema.PARENT_RUN_TAG not in r.data.tags]
    children = [r for r in runs if schema.PARENT_RUN_TAG in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags[schema.PARENT_RUN_TAG] for c in children} == {parents[0].info.run_id}
    study = optuna.load_study(study_name="team", storage=storage)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert sorted(t.user_attrs["mlflow_run_id"] for t in finished) == sorted(
        c.info.run_id for c in children
    )
