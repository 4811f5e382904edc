"""What newsdesk takes from below MLflow's public API still behaves as newsdesk relies on.

If an MLflow upgrade moves or changes any of it, these fail (and `tracker.store.mlflow_internals`
fails at import), instead of names being accepted here and refused later by the store.
"""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, WriterConfig
from tracker.dashboard.compare import metric_history
from tracker.store import mlflow_internals as internals


@pytest.mark.parametrize("kind", ["metric", "param", "tag"])
def test_validators_accept_what_the_store_accepts(kind):
    for name in ("train/loss", "model.hidden_size", "验证/准确率", "a-b_c.d e"):
        internals.NAME_VALIDATORS[kind](name)


@pytest.mark.parametrize("kind", ["metric", "param", "tag"])
def test_validators_refuse_what_the_store_refuses(kind):
    for name in ("../escape", "/absolute", "a//b"):
        with pytest.raises(MlflowException):
            internals.NAME_VALIDATORS[kind](name)


def test_batch_limits_are_the_rest_api_limits():
    # The documented limits of MLflow's log-batch endpoint.
    assert internals.MAX_METRICS_PER_BATCH == 1000
    assert internals.MAX_PARAMS_TAGS_PER_BATCH == 100
    assert internals.MAX_ENTITIES_PER_BATCH == 1000
    assert internals.MAX_ENTITY_KEY_LENGTH >= 250
    assert internals.MAX_PARAM_VAL_LENGTH >= 6000


def test_the_history_query_reads_the_store_schema(store_uri):
    """The one SQL query against MLflow's tables returns what the client API returns."""
    with TrainingLogger("internals", tracking_uri=store_uri, writer_config=WriterConfig()) as log:
        for step in range(1, 4):
            log.log_metrics({"train/loss": 1.0 / step, "val/acc": float("nan")}, step=step)
    frame = metric_history([log.run_id], ["train/loss", "val/acc"], tracking_uri=store_uri)
    client = MlflowClient(tracking_uri=store_uri)
    for key in ("train/loss", "val/acc"):
        history = client.get_metric_history(log.run_id, key)
        mine = frame[frame["key"] == key]
        assert mine["step"].tolist() == [m.step for m in history] == [1, 2, 3]
        expected = [m.value for m in history]
        assert mine["value"].tolist() == pytest.approx(expected, nan_ok=True)
