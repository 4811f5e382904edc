"""One training run end to end: build the model, train it, log results, artifacts and the model.

The logger is injected; this module never opens an MLflow run itself.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib import pyplot as plt

from tracker import schema
from tracker.interface import MetricLogger
from trainers.checkpoint import make_checkpoint, save_checkpoint
from trainers.config import TrainConfig, resolve_schedule
from trainers.data.pipeline import DataConfig, PreparedData
from trainers.distributed import Distributed, PeerLost
from trainers.evaluate import classification_report, confusion, macro_f1
from trainers.loop import (
    TrainingDiverged,
    TrainResult,
    ValidationHook,
    per_process_examples,
    train,
)
from trainers.models.init import init_weights
from trainers.models.ngram_bag import fit_bag_weights, with_derived_buckets, with_derived_ngrams
from trainers.models.registry import build_model
from trainers.plots import confusion_figure, curves_figure
from trainers.resume_state import Checkpointer

# How long the store may take to acknowledge what training logged before the uploads start.
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
    result: TrainResult,
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
        schema.BEST_STEP: result.best_step,
    }
    report = classification_report(result.test, names)
    logger.log_metrics({**test_metrics, **per_class_metrics(report)}, step=result.global_step)
    _check_store_before_uploads(logger, checkpointer)
    logger.log_dict(report, schema.TEST_REPORT_ARTIFACT)
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
        plt.close(fig)
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
    result: TrainResult
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


def run_params(
    model_name: str,
    model_config: Any,
    data_config: DataConfig,
    train_config: TrainConfig,
    prepared: PreparedData,
    num_parameters: int,
    dist: Distributed | None = None,
) -> dict:
    return {
        "model": {
            "name": model_name,
            **dataclasses.asdict(model_config),
            "num_parameters": num_parameters,
        },
        "data": data_params(data_config, prepared),
        "train": dataclasses.asdict(train_config),
        # train.batch_size is per process; the job's batch is world_size times that.
        "distributed": {
            "world_size": dist.world_size if dist else 1,
            "backend": dist.backend if dist else "none",
            "global_batch_size": train_config.batch_size * (dist.world_size if dist else 1),
        },
    }


def run_training(
    model_name: str,
    model_config: Any,
    data_config: DataConfig,
    train_config: TrainConfig,
    prepared: PreparedData,
    logger: MetricLogger,
    *,
    progress: bool = True,
    log_model: bool = True,
    checkpointer: Checkpointer | None = None,
    resume: dict[str, Any] | None = None,
    dist: Distributed | None = None,
    on_validation: ValidationHook | None = None,
) -> RunOutcome:
    """Train and log one model. With `resume`, continue the run from that resume checkpoint
    (params are not logged again: the run has them). With `dist`, this process is one of a
    data-parallel job: every process trains; rank 0 (whose logger is the run's) logs, tests
    and uploads, and the others return once training is done."""
    started = time.perf_counter()
    torch.manual_seed(train_config.seed)
    pretrained = prepared.embeddings.weight if prepared.embeddings is not None else None
    # An n-gram order and a bucket count left to the data (0) are fixed here, so that the
    # params, the checkpoint and prediction see the table this run trained.
    model_config = with_derived_ngrams(model_config, data_config.tokenizer)
    model_config = with_derived_buckets(model_config, prepared.splits["train"].ids)
    model = build_model(
        model_name, model_config, len(prepared.vocab), prepared.num_classes, pretrained
    )
    init_weights(model, train_config.init)
    fit_bag_weights(model, prepared.splits["train"].ids)
    # The schedule this corpus gets, logged as the run's train.* params.
    train_config = resolve_schedule(
        train_config, per_process_examples(len(prepared.splits["train"]), dist)
    )
    num_parameters = sum(p.numel() for p in model.parameters())
    if resume is None:
        logger.log_params(
            run_params(
                model_name, model_config, data_config, train_config, prepared, num_parameters, dist
            )
        )
    log_data_tags(logger, model_name, prepared, inputs=resume is None)

    try:
        result = train(
            model,
            prepared,
            train_config,
            logger,
            progress=progress,
            checkpointer=checkpointer,
            resume=resume,
            dist=dist,
            on_validation=on_validation,
        )
    except (TrainingDiverged, PeerLost) as exc:
        logger.set_tags({schema.FAILURE_REASON_TAG: str(exc)})  # the run ends FAILED
        raise
    if result.test is None:  # a process of a distributed job other than rank 0
        return RunOutcome(result, {}, None, num_parameters)

    def checkpoint() -> dict:
        return make_checkpoint(
            model,
            model_name,
            model_config,
            prepared.vocab.tokens,
            prepared.corpus.label_names,
            data_config.tokenizer,
            prepared.pad_size,
            extra={"best_step": result.best_step, "data_fingerprint": prepared.corpus.fingerprint},
        )

    test_metrics, model_uri = log_results(
        logger,
        model_name,
        prepared,
        result,
        started,
        checkpoint if log_model else None,
        checkpointer,
    )
    if checkpointer is not None:
        checkpointer.remove()  # the run is complete: its resume state is no longer needed
    return RunOutcome(result, test_metrics, model_uri, num_parameters)
