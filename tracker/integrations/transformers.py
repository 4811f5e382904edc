"""`NewsdeskCallback`: newsdesk's `TrainingLogger` as a Hugging Face `TrainerCallback`.

It replaces `report_to="mlflow"` with one line (`callbacks=[NewsdeskCallback()]`) and reads the
same variables as the stock `MLflowCallback` (`MLFLOW_EXPERIMENT_NAME`, `MLFLOW_RUN_ID`,
`MLFLOW_TRACKING_URI`; explicit arguments win). What it adds: points are written in the
background, each once (the stock callback's `synchronous=False` batches are fire-and-forget,
and an `epoch` value logged twice at one step is stored twice); metric names keep their
characters (the stock callback replaces anything outside ASCII with `_`); params are dotted,
never dropped for length; and a training that dies before `on_train_end` ends its run FAILED,
or KILLED on Ctrl-C, at interpreter exit instead of staying RUNNING forever.
"""

from __future__ import annotations

import atexit
import numbers
import os
import sys
import warnings
from typing import Any

from mlflow.tracking import MlflowClient
from transformers import TrainerCallback

from tracker.interface import RunStatus
from tracker.logger.mlflow_logger import TrainingLogger
from tracker.logger.params import to_param_values
from tracker.predictions import log_test_predictions
from tracker.store.location import resolve_store

DEFAULT_EXPERIMENT = "Default"  # where MLflow (and the stock callback) put runs by default


def _number(value: Any) -> float | None:
    """A loggable number: ints, floats, numpy scalars and one-element tensors; None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Number):
        return float(value)
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() == 1:
        return float(value.item())
    return None


class NewsdeskCallback(TrainerCallback):
    """Streams a `transformers.Trainer`'s logs into one MLflow run; world process zero only.

    `on_log` stores every numeric value at `state.global_step`; `on_evaluate` adds any
    evaluation metric `on_log` did not carry; `on_train_end` ends the run FINISHED. An
    `evaluate()` after training takes the same run up again and ends it again.

    Args:
        experiment: MLflow experiment (default: `MLFLOW_EXPERIMENT_NAME`, as the stock
            `MLflowCallback` reads it).
        tracking_uri: the store (default: `MLFLOW_TRACKING_URI`, else the embedded store).
        run_name: the run's name (default: the Trainer's `run_name`).
        tags: tags of the run. `MLFLOW_RUN_ID` continues that run instead of creating one.

    A training that raises never reaches `on_train_end`; its run still ends, at interpreter
    exit: FAILED after an error, KILLED after Ctrl-C.
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        tracking_uri: str | None = None,
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        self._experiment = experiment
        self._tracking_uri = tracking_uri
        self._run_name = run_name
        self._tags = dict(tags or {})
        self._logger: TrainingLogger | None = None
        self.run_id: str | None = None
        self._training = False
        self._last_step: dict[str, int] = {}
        self._interrupted: type[BaseException] | None = None

    # ----- the run ----------------------------------------------------------------------------
    def _open(self, args: Any, model: Any) -> TrainingLogger:
        if self._logger is not None:
            return self._logger
        tracking_uri = resolve_store(self._tracking_uri).tracking_uri
        reopening = self.run_id is not None  # evaluate() after train(): params are logged
        run_id = self.run_id or os.environ.get("MLFLOW_RUN_ID") or None
        experiment = self._experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        existing: dict[str, str] = {}
        if run_id is not None:
            client = MlflowClient(tracking_uri=tracking_uri)
            run = client.get_run(run_id)
            experiment = client.get_experiment(run.info.experiment_id).name
            existing = dict(run.data.params)
        self._logger = TrainingLogger(
            experiment or DEFAULT_EXPERIMENT,
            run_name=self._run_name or getattr(args, "run_name", None),
            tracking_uri=tracking_uri,
            run_id=run_id,
            tags={"newsdesk.integration": "transformers", **self._tags},
        )
        self.run_id = self._logger.run_id
        atexit.register(self._close_at_exit)
        if not reopening:
            self._log_params(args, model, existing)
        return self._logger

    def log_test_predictions(
        self, *, labels: Any, predicted: Any, probability: Any | None = None, digest: str
    ) -> None:
        """Keep a test evaluation's predictions with the run, so that `newsdesk promote` and
        `compare --paired` can test it against another run example by example: for example
        from `trainer.predict(test_dataset)` after training (`label_ids`, the arg-max of
        `predictions`). `digest` names the test split: the same split, the same digest.
        A run that training already ended is taken up again for it and ends FINISHED."""
        if self.run_id is None:
            raise ValueError("no run yet: log test predictions after trainer.train()")
        was_open = self._logger is not None
        logger = self._open(None, None)
        log_test_predictions(
            logger, labels=labels, predicted=predicted, probability=probability, digest=digest
        )
        if not was_open:
            self._close(RunStatus.FINISHED)

    def _log_params(self, args: Any, model: Any, existing: dict[str, str]) -> None:
        """Model config and training arguments as dotted params. A run taken up again keeps
        the params it has (MLflow params never change); a changed value is reported."""
        params: dict[str, Any] = {}
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            params.update(config.to_dict())
        if args is not None:
            params.update(args.to_dict())
        values = to_param_values(params)
        changed = [k for k, v in values.items() if k in existing and existing[k] != v]
        if changed:
            warnings.warn(
                f"run {self.run_id} keeps its params {', '.join(sorted(changed)[:5])}: MLflow "
                "params cannot change",
                stacklevel=3,
            )
        fresh = {k: v for k, v in values.items() if k not in existing}
        if fresh and self._logger is not None:
            self._logger.log_params(fresh)

    def _close(self, status: RunStatus) -> None:
        logger, self._logger = self._logger, None
        if logger is None:
            return
        atexit.unregister(self._close_at_exit)
        logger.close(status)

    def _close_at_exit(self) -> None:
        """The interpreter is exiting with the run still open: training never reached
        `on_train_end`. Ctrl-C ends it KILLED, anything else FAILED."""
        if self._logger is None:
            return
        if not self._training:
            self._close(RunStatus.FINISHED)
            return
        last = getattr(sys, "last_type", None)
        killed = last is not None and issubclass(last, KeyboardInterrupt)
        self._close(RunStatus.KILLED if killed else RunStatus.FAILED)

    # ----- Trainer events ---------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero:
            self._training = True
            self._open(args, model)

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if state.is_world_process_zero and logs:
            self._log(self._open(args, model), logs, state.global_step)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if metrics:
            self._log(self._open(args, model), metrics, state.global_step)
        if not self._training:
            self._close(RunStatus.FINISHED)  # a standalone evaluate() is complete here

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._training = False
            self._close(RunStatus.FINISHED)

    def _log(self, logger: TrainingLogger, values: dict[str, Any], step: int) -> None:
        """Each key once per step: the Trainer hands `epoch` (and evaluation metrics, through
        both `on_log` and `on_evaluate`) over more than once at the same step."""
        points: dict[str, float] = {}
        for key, value in values.items():
            number = _number(value)
            if number is None or self._last_step.get(key) == step:
                continue
            points[key] = number
            self._last_step[key] = step
        if points:
            logger.log_metrics(points, step=step)
