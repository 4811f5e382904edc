"""The Python API follows MLflow's conventions (issue 38, item 2), on a real SQLite store."""

from __future__ import annotations

import os
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, WriterConfig

FAST = WriterConfig(flush_interval_s=0.05)


@pytest.fixture
def clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
        "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
        "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
    ):
        monkeypatch.delenv(name, raising=False)


def experiment_of(uri: str, run_id: str) -> str:
    client = MlflowClient(tracking_uri=uri)
    return client.get_experiment(client.get_run(run_id).info.experiment_id).name


def test_experiment_comes_from_the_environment_else_newsdesk(
    store_uri, clean_mlflow_env, monkeypatch
):
    with TrainingLogger(tracking_uri=store_uri, writer_config=FAST) as plain:
        pass
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with TrainingLogger(tracking_uri=store_uri, writer_config=FAST) as named:
        pass
    with TrainingLogger("explicit", tracking_uri=store_uri, writer_config=FAST) as explicit:
        pass
    assert experiment_of(store_uri, plain.run_id) == "newsdesk"
    assert experiment_of(store_uri, named.run_id) == "from-env"
    assert experiment_of(store_uri, explicit.run_id) == "explicit"


def test_experiment_id_from_the_environment(store_uri, clean_mlflow_env, monkeypatch):
    experiment_id = MlflowClient(tracking_uri=store_uri).create_experiment("by-id")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    with TrainingLogger(tracking_uri=store_uri, writer_config=FAST) as log:
        pass
    assert experiment_of(store_uri, log.run_id) == "by-id"


def test_mlflow_run_id_continues_that_run_once(store_uri, clean_mlflow_env, monkeypatch):
    with TrainingLogger("first", tracking_uri=store_uri, writer_config=FAST) as first:
        first.log_metric("loss", 1.0, step=1)
    monkeypatch.setenv("MLFLOW_RUN_ID", first.run_id)
    with TrainingLogger(tracking_uri=store_uri, writer_config=FAST) as again:
        again.log_metric("loss", 0.5, step=2)
    assert again.run_id == first.run_id
    assert again.experiment_name == "first"  # the run's own experiment, none given
    assert "MLFLOW_RUN_ID" not in os.environ  # taken once, as mlflow.start_run takes it
    history = MlflowClient(tracking_uri=store_uri).get_metric_history(first.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]
    with TrainingLogger(tracking_uri=store_uri, writer_config=FAST) as third:
        pass
    assert third.run_id != first.run_id


def test_active_run_inside_the_block_and_singular_calls(store_uri, clean_mlflow_env):
    before_uri = mlflow.get_tracking_uri()
    with TrainingLogger("exp", tracking_uri=store_uri, writer_config=FAST) as log:
        active = mlflow.active_run()
        assert active is not None and active.info.run_id == log.run_id
        mlflow.log_metric("library/metric", 7.0, step=3)  # a library's own MLflow call
        log.log_metric("train/loss", 0.25, step=1)
        log.log_param("lr", 0.001)
        log.set_tag("stage", "try")
    assert mlflow.active_run() is None
    assert mlflow.get_tracking_uri() == before_uri
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"library/metric": 7.0, "train/loss": 0.25}
    assert run.data.params == {"lr": "0.001"}
    assert run.data.tags["stage"] == "try"


def test_inside_an_outer_mlflow_run_the_new_run_is_its_child(
    store_uri, clean_mlflow_env, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    mlflow.set_tracking_uri(store_uri)
    mlflow.set_experiment("outer")
    try:
        with mlflow.start_run() as outer:
            with TrainingLogger(writer_config=FAST) as inner:
                assert mlflow.active_run().info.run_id == inner.run_id
            assert mlflow.active_run().info.run_id == outer.info.run_id
    finally:
        mlflow.set_tracking_uri(None)
    run = MlflowClient(tracking_uri=store_uri).get_run(inner.run_id)
    assert run.data.tags["mlflow.parentRunId"] == outer.info.run_id
    assert experiment_of(store_uri, inner.run_id) == "outer"
    assert run.info.status == "FINISHED"


def test_mlflow_system_metrics_switch(store_uri, clean_mlflow_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    with TrainingLogger("exp", tracking_uri=store_uri, writer_config=FAST) as log:
        time.sleep(1.0)
    metrics = MlflowClient(tracking_uri=store_uri).get_run(log.run_id).data.metrics
    assert any(name.startswith("system/") for name in metrics)


def test_a_bad_sampling_interval_names_the_variable(store_uri, clean_mlflow_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "1")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "often")
    with pytest.raises(ValueError, match="MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
        TrainingLogger("exp", tracking_uri=store_uri, writer_config=FAST)
