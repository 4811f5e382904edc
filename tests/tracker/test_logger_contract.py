"""One contract, every logger implementation."""

from __future__ import annotations

import pytest

from tracker import MemoryLogger, MetricLogger, RunStatus, TrainingLogger


@pytest.fixture(params=["memory", "mlflow"])
def make_logger(request, store_uri):
    def make():
        if request.param == "memory":
            return MemoryLogger()
        return TrainingLogger("contract", tracking_uri=store_uri)

    return make


def test_logger_satisfies_the_protocol(make_logger):
    log = make_logger()
    assert isinstance(log, MetricLogger)
    log.close()


def test_step_is_required_and_keyword_only(make_logger):
    with make_logger() as log:
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0}, 1)
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0}, step=None)


def test_bad_names_raise_value_error(make_logger):
    with make_logger() as log:
        with pytest.raises(ValueError):
            log.log_metrics({"bad name!": 1.0}, step=1)
        with pytest.raises(ValueError):
            log.log_figure(object(), "../x.png")


def test_steps_outside_int64_and_values_that_are_not_numbers_are_refused_at_the_call(
    make_logger, store_uri
):
    """Before, step=2**63 was accepted here and then blocked the background writer for good
    (0 of 101 points stored), and a string value cost its whole batch."""
    import numpy as np
    from mlflow.tracking import MlflowClient

    log = make_logger()
    with log:
        for step in (2**63, -(2**63) - 1, np.uint64(2**63)):
            with pytest.raises(ValueError, match="int64"):
                log.log_metrics({"train/loss": 1.0}, step=step)
        for value in ("0.5", b"0.5", None, object(), [1.0]):
            with pytest.raises(ValueError, match="'train/loss': value must be a number"):
                log.log_metrics({"train/loss": value}, step=1)
        for step in range(1, 101):
            log.log_metrics({"train/loss": 1.0 / step}, step=step)
        log.log_metrics({"train/loss": 0.0, "edge": 1.0}, step=2**63 - 1)
    if isinstance(log, TrainingLogger):
        stored = MlflowClient(tracking_uri=store_uri).get_metric_history(log.run_id, "train/loss")
        assert sorted(m.step for m in stored) == [*range(1, 101), 2**63 - 1]
    else:
        assert [s for s, _ in log.records] == [*range(1, 101), 2**63 - 1]


def test_closed_logger_refuses_points(make_logger):
    log = make_logger()
    log.close(RunStatus.FINISHED)
    with pytest.raises(RuntimeError):
        log.log_metrics({"train/loss": 1.0}, step=1)


def test_memory_logger_records_steps_in_order():
    log = MemoryLogger(params={"model": {"h": 2}})
    log.log_metrics({"a": 1, "b": 2}, step=1)
    log.log_metrics({"a": 3}, step=2)
    assert log.records == [(1, {"a": 1.0, "b": 2.0}), (2, {"a": 3.0})]
    assert log.history("a") == [(1, 1.0), (2, 3.0)]
    assert log.params == {"model.h": "2"}
