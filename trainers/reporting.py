"""What every model's run records at its end, whoever trained it.

The loop's runs (`trainers.run`) and the linear baseline's (`trainers.linear_run`) end the same
way: the model and data tags and dataset inputs, the test metrics (per class too), the report
and figures, and the checkpoint as a raw-text pyfunc model. Kept here, owned by neither, so the
runs stay alike for the comparison view, `promote` and `predict`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracker import schema
from tracker.interface import MetricLogger
from tracker.predictions import log_test_predictions
from trainers.checkpoint import save_checkpoint
from trainers.data.pipeline import DataConfig, PreparedData
from trainers.evaluate import Evaluation, classification_report, confusion, macro_f1
from trainers.plots import confusion_figure, curves_figure
from trainers.state import Checkpointer, History


@dataclass(kw_only=True)
class RunResult:
    """What a runner hands to `log_results`: where training ended, the test evaluation (None
    on the processes of a distributed job other than rank 0), speed, and the curves (empty for
    a model fitted in one step)."""

    global_step: int
    best_step: int
    test: Evaluation | None
    train_seconds: float
    samples_per_s: float
    train_history: History = field(default_factory=list)
    val_history: History = field(default_factory=list)


STORE_CHECK_S = 30.0


class StoreUnavailable(RuntimeError):
    """The tracking store did not answer after training: the uploads are not attempted."""


def _check_store_before_uploads(logger: MetricLogger, checkpointer: Checkpointer | None) -> None:
    """The model upload is synchronous (the registry needs the store), and against a dead
    server it would wait out MLflow's own retries (minutes). So the store is asked once, with
    a deadline, before the report and figures; when it does not answer,
    the run ends FAILED at once, saying where the trained model is kept (the final resume
    checkpoint, saved whatever the store does) and how to finish the run later."""
    if logger.flush(timeout=STORE_CHECK_S):
        return
    kept = f"the trained model is kept in {checkpointer.path}; " if checkpointer else ""
    reason = (
        f"the tracking store did not answer within {STORE_CHECK_S:.0f}s after training; {kept}"
        f"once the store is back: newsdesk sync, then newsdesk resume {logger.run_id}"
    )
    logger.set_tags({schema.FAILURE_REASON_TAG: reason})
    raise StoreUnavailable(reason)


def per_class_metrics(report: dict) -> dict[str, float]:
    """`test/f1/<class>`, `test/precision/<class>`, `test/recall/<class>` from the test report,
    so the MLflow UI compares classes across runs."""
    metrics = {}
    for name, values in report["classes"].items():
        for prefix in schema.PER_CLASS_PREFIXES:
            metrics[schema.per_class_metric(prefix, name)] = values[prefix.split("/")[1]]
    return metrics


def log_data_tags(
    logger: MetricLogger, model_name: str, prepared: PreparedData, *, inputs: bool
) -> None:
    """The model and data tags of a run, and (with `inputs`) its dataset inputs."""
    logger.set_tags(
        {
            schema.MODEL_TAG: model_name,
            schema.DATA_FINGERPRINT_TAG: prepared.corpus.fingerprint,
            schema.DATA_SOURCE_TAG: prepared.corpus.source,
        }
    )
    if not inputs:
        return
    for context, split in prepared.corpus.splits().items():
        logger.log_input(
            f"{Path(prepared.corpus.source).name or prepared.corpus.source}/{context}",
            context=context,
            digest=split.digest,
            source=split.path,
            num_rows=len(split),
        )


def log_results(
    logger: MetricLogger,
    model_name: str,
    prepared: PreparedData,
    result: RunResult,
    started: float,
    checkpoint: Callable[[], dict] | None,
    checkpointer: Checkpointer | None = None,
) -> tuple[dict[str, float], str | None]:
    """What every model's run ends with, linear or neural: test metrics, per-class report,
    confusion figure (and the curves when there was a training curve), and the checkpoint
    made by `checkpoint` as a raw-text pyfunc model. Returns the test metrics and model URI."""
    names = prepared.corpus.label_names
    test_metrics = {
        schema.TEST_LOSS: result.test.loss,
        schema.TEST_ACC: result.test.acc,
        schema.TEST_MACRO_F1: macro_f1(result.test, len(names)),
        schema.SAMPLES_PER_S: result.samples_per_s,
        schema.TRAIN_SECONDS: result.train_seconds,
        schema.WALL_TIME_S: time.perf_counter() - started,
    }
    report = classification_report(result.test, names)
    logger.log_metrics({**test_metrics, **per_class_metrics(report)}, step=result.global_step)
    _check_store_before_uploads(logger, checkpointer)
    logger.log_dict(report, schema.TEST_REPORT_ARTIFACT)
    log_test_predictions(
        logger,
        labels=result.test.labels,
        predicted=result.test.predictions,
        probability=result.test.probabilities,
        digest=prepared.corpus.test.digest,
    )
    title = f"{model_name}: test accuracy {result.test.acc:.2%}"
    figures = {
        schema.CONFUSION_ARTIFACT: confusion_figure(
            confusion(result.test, len(names)), names, title
        )
    }
    if result.train_history:
        figures[schema.CURVES_ARTIFACT] = curves_figure(
            result.train_history, result.val_history, model_name
        )
    for artifact, fig in figures.items():
        logger.log_figure(fig, artifact)
    if checkpoint is None:
        return test_metrics, None
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(checkpoint(), Path(tmp) / "checkpoint.pt")
        model_uri = logger.log_model(
            path,
            schema.MODEL_ARTIFACT,
            loader="trainers.predict:load_predictor",
            input_example=prepared.corpus.test.texts[:3],
            code_packages=["tracker", "trainers"],
        )
    return test_metrics, model_uri


@dataclass
class RunOutcome:
    result: RunResult
    test_metrics: dict[str, float]
    model_uri: str | None
    num_parameters: int


def data_params(data_config: DataConfig, prepared: PreparedData) -> dict:
    """The `data.*` params of a run: the data config and what the corpus turned out to be."""
    data = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in dataclasses.asdict(data_config).items()
        if k != "cache_dir"
    }
    data["data"] = data["data"] or prepared.corpus.source
    data["num_classes"] = prepared.num_classes
    stats = {k.removeprefix("data."): v for k, v in prepared.stats.items()}
    return {**data, **stats}
