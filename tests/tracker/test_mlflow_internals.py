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


def test_the_shipping_config_spells_mlflows_batch_limit():
    """`WriterConfig` loads without MLflow, so it spells the limit; it must be MLflow's."""
    from tracker.shipping.config import MLFLOW_BATCH_LIMIT, WriterConfig

    assert MLFLOW_BATCH_LIMIT == internals.MAX_ENTITIES_PER_BATCH
    assert WriterConfig().batch_size == internals.MAX_ENTITIES_PER_BATCH


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


def _points(seed: int) -> list[tuple[str, float, int, int]]:
    """Awkward points: NaN, infinities, a repeated point, the same step twice with different
    values and timestamps, steps out of order, a negative step, a second key."""
    import random

    rng = random.Random(seed)
    points = [("loss", rng.random(), 1000 + s, s) for s in range(1, 300)]
    points += [("loss", float("nan"), 5000, 400), ("loss", float("inf"), 5001, 401)]
    points += [("loss", float("-inf"), 5002, 402), ("loss", 0.5, 5003, 402)]
    points += [("loss", 0.25, 10, 402), points[0], ("acc", 0.9, 7, -3), ("acc", 0.1, 6, 50)]
    points += [("acc", 0.2, 6, 50), ("acc", float("nan"), 8, 50)]
    rng.shuffle(points)
    return points


def test_bulk_metric_insert_stores_what_log_batch_stores(store_uri):
    """The shipper's bulk path against MLflow's own `log_batch`, point for point: every
    history, every latest value, duplicates ignored (also when sent again), refusals."""
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=store_uri)
    exp = client.create_experiment("bulk")
    bulk, reference = (client.create_run(exp).info.run_id for _ in range(2))
    engine = internals.sql_engine(client)
    assert engine is not None and engine.dialect.name == "sqlite"
    points = _points(0)
    for start in range(0, len(points), 100):
        chunk = points[start : start + 100]
        internals.insert_metrics(engine, bulk, chunk)
        internals.insert_metrics(engine, bulk, chunk)  # an unacknowledged batch sent again
        client.log_batch(reference, metrics=[Metric(*p[:2], p[2], p[3]) for p in chunk])

    def history(run_id: str, key: str) -> list[tuple]:
        return sorted(
            (m.step, m.timestamp, str(m.value)) for m in client.get_metric_history(run_id, key)
        )

    for key in ("loss", "acc"):
        assert history(bulk, key) == history(reference, key)
    assert len(history(bulk, "loss")) == 304
    latest = client.get_run(bulk).data.metrics
    expected = client.get_run(reference).data.metrics
    assert str(sorted(latest.items())) == str(sorted(expected.items()))  # NaN != NaN
    assert latest["loss"] == 0.5  # step 402, the later timestamp

    client.delete_run(reference)
    with pytest.raises(MlflowException, match="must be in the 'active' state") as deleted:
        internals.insert_metrics(engine, reference, points[:1])
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="not found") as unknown:
        internals.insert_metrics(engine, "0" * 32, points[:1])
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_tracking_server_has_no_engine_to_bypass():
    assert internals.sql_engine(MlflowClient(tracking_uri="http://127.0.0.1:9")) is None
