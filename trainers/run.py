"""One training run end to end: build the model, train it, log results, artifacts and the model.

The logger is injected; this module never opens an MLflow run itself.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from tracker import schema
from tracker.interface import MetricLogger
from trainers.checkpoint import make_checkpoint
from trainers.config import TrainConfig, resolve_schedule
from trainers.data.pipeline import DataConfig, PreparedData
from trainers.distributed import Distributed, PeerLost
from trainers.loop import (
    Governor,
    TrainingDiverged,
    ValidationHook,
    per_process_examples,
    train,
)
from trainers.models.init import init_weights
from trainers.models.ngram_bag import fit_bag_weights, with_derived_buckets, with_derived_ngrams
from trainers.models.registry import build_model
from trainers.reporting import RunOutcome, data_params, log_data_tags, log_results
from trainers.state import Checkpointer


# How long the store may take to acknowledge what training logged before the uploads start.
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
    governor: Governor | None = None,
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
            progress_label=model_name,
            checkpointer=checkpointer,
            resume=resume,
            dist=dist,
            on_validation=on_validation,
            governor=governor,
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
