"""One run of the linear baseline, logged like the neural models' runs.

Same params layout (`model.*`, `data.*`), tags, dataset inputs, `val/*` and `test/*` metrics,
per-class report, confusion figure, `perf/*` and a raw-text pyfunc model, so the comparison
view, `promote`, `predict` and `mlflow models serve` treat it like any other run. It has no
optimizer steps: everything is logged at step 1.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from tracker import schema
from tracker.interface import MetricLogger
from trainers.data.pipeline import DataConfig, PreparedData
from trainers.evaluate import Evaluation
from trainers.models.calibration import log_loss
from trainers.models.linear import NAME, LinearClassifier, LinearConfig, fit_linear
from trainers.reporting import RunOutcome, RunResult, data_params, log_data_tags, log_results

STEP = 1


def evaluate_linear(model: LinearClassifier, texts: list[str], labels: list[int]) -> Evaluation:
    """Loss (cross-entropy of the calibrated probabilities) and accuracy on a split."""
    scores = model.scores(texts)
    truth = np.asarray(labels, dtype=np.int64)
    predictions = scores.argmax(axis=1)
    calibrated = scores / model.temperature
    exp = np.exp(calibrated - calibrated.max(axis=1, keepdims=True))
    return Evaluation(
        probabilities=(exp.max(axis=1) / exp.sum(axis=1)) if len(truth) else None,
        loss=log_loss(scores / model.temperature, truth) if len(truth) else float("nan"),
        acc=float((predictions == truth).mean()) if len(truth) else float("nan"),
        predictions=predictions,
        labels=truth,
    )


def run_linear(
    config: LinearConfig,
    data_config: DataConfig,
    prepared: PreparedData,
    logger: MetricLogger,
    *,
    log_model: bool = True,
) -> RunOutcome:
    """Fit the TF-IDF features and the SVM on train, calibrate on dev, test, log."""
    started = time.perf_counter()
    corpus = prepared.corpus
    fit_started = time.perf_counter()
    model = fit_linear(
        config,
        data_config.tokenizer,
        (corpus.train.texts, corpus.train.labels),
        (corpus.dev.texts, corpus.dev.labels),
        corpus.label_names,
    )
    train_seconds = time.perf_counter() - fit_started
    num_parameters = int(model.coef.size + model.intercept.size)
    logger.log_params(
        {
            "model": {
                "name": NAME,
                **dataclasses.asdict(config),
                "num_parameters": num_parameters,
                "num_features": model.num_features,
                "temperature": round(model.temperature, 4),
            },
            "data": data_params(data_config, prepared),
        }
    )
    log_data_tags(logger, NAME, prepared, inputs=True)
    dev = evaluate_linear(model, corpus.dev.texts, corpus.dev.labels)
    logger.log_metrics(
        {
            schema.VAL_LOSS: dev.loss,
            schema.VAL_ACC: dev.acc,
            schema.BEST_LOSS: dev.loss,
            schema.BEST_ACC: dev.acc,
            schema.BEST_AT_STEP: STEP,
        },
        step=STEP,
    )
    result = RunResult(
        global_step=STEP,
        best_step=STEP,
        test=evaluate_linear(model, corpus.test.texts, corpus.test.labels),
        train_seconds=train_seconds,
        samples_per_s=len(corpus.train) / max(train_seconds, 1e-9),
    )

    def checkpoint() -> dict:
        return model.checkpoint({"best_step": STEP, "data_fingerprint": corpus.fingerprint})

    test_metrics, model_uri = log_results(
        logger, NAME, prepared, result, started, checkpoint if log_model else None
    )
    return RunOutcome(result, test_metrics, model_uri, num_parameters)
