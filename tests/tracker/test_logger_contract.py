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
