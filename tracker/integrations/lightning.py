"""`NewsdeskLogger`: newsdesk's `TrainingLogger` as a Lightning `Logger`.

What it adds over Lightning's `MLFlowLogger`: `self.log` never blocks on the store (points are
written in the background, each once); metric names keep their characters (`验证/准确率`
stays, where `MLFlowLogger` strips everything outside ASCII); the run ends KILLED on Ctrl-C or
SIGTERM, FAILED on an error, FINISHED otherwise; and the best checkpoint of the trainer's
`ModelCheckpoint` is logged as a pyfunc model that `newsdesk promote` registers and `mlflow
models serve` serves (a `.ckpt` artifact cannot be registered).

Usage::

    from tracker.integrations.lightning import NewsdeskLogger
    trainer = lightning.Trainer(logger=NewsdeskLogger("thucnews", run_name="lit-cnn"),
                                callbacks=[ModelCheckpoint(monitor="val/acc", mode="max")])
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from tracker.integrations.lightning_model import (
    CHECKPOINT_KEY,
    CLASS_PICKLE_KEY,
    MODULE_CLASS_KEY,
    class_path,
    importable_elsewhere,
    pickle_class,
)
from tracker.interface import RunStatus
from tracker.logger.conventions import EXPERIMENT_NAME_ENV
from tracker.logger.mlflow_logger import TrainingLogger
from tracker.logger.pyfunc_upload import pinned_requirements, upload_pyfunc
from tracker.schema import DEFAULT_EXPERIMENT, MODEL_ARTIFACT

MODEL_CODE = Path(__file__).with_name("lightning_model_code.py")
_REQUIREMENTS = ("mlflow", "torch", "lightning", "pandas", "numpy")
CHECKPOINT_PATH_TAG = "newsdesk.best_checkpoint"


def _status_of(status: str) -> RunStatus:
    """Lightning says only "success" or "failed"; the exception being handled (finalize runs
    inside Lightning's `except` block) tells a Ctrl-C or SIGTERM from an error."""
    if status in ("success", "finished", "FINISHED"):
        return RunStatus.FINISHED
    exc = sys.exc_info()[1]
    if isinstance(exc, KeyboardInterrupt | SIGTERMException):
        return RunStatus.KILLED
    return RunStatus.FAILED


def _plain(value: Any) -> Any:
    """A hyperparameter value MLflow can hold: containers kept for flattening, tensors and
    other objects as their text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return value


class NewsdeskLogger(Logger):
    """A Lightning logger backed by `TrainingLogger`; rank zero only.

    `finalize` ends the run; if the trainer is used again (`trainer.test` after `fit`), the
    same run is taken up again and ended again, so a fit and its test stay one run.

    Args:
        experiment: MLflow experiment name; created when missing (default:
            `MLFLOW_EXPERIMENT_NAME`, else "newsdesk", as for `TrainingLogger`).
        tracking_uri: the store (default: `MLFLOW_TRACKING_URI`, else the embedded store).
        run_name: the run's name.
        tags: tags of the run.
        log_model: log the best checkpoint of `ModelCheckpoint` (by its monitor and mode) as a
            pyfunc model with the metric `best/<monitor>`, for `newsdesk promote`.

    After `fit`, `run_id` names the run and `model_uri` the logged model (None without one).
    Names MLflow would refuse raise `ValueError` at `self.log`, as `TrainingLogger` does.
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        tracking_uri: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_model: bool = True,
    ) -> None:
        super().__init__()
        self._experiment_name = experiment
        self._tracking_uri = tracking_uri
        self._run_name = run_name
        self._tags = dict(tags or {})
        self._log_model = log_model
        self._logger: TrainingLogger | None = None
        self._run_id: str | None = None
        self._checkpoint_callback: ModelCheckpoint | None = None
        self._module_class: str | None = None
        self._carried_class: type | None = None  # pickled with the model (`__main__` classes)
        self._last_step = 0
        self._logged_checkpoint: str | None = None
        self.model_uri: str | None = None

    # ----- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self._logger is not None:
            return self._logger.experiment_name
        return self._experiment_name or os.environ.get(EXPERIMENT_NAME_ENV) or DEFAULT_EXPERIMENT

    @property
    def version(self) -> str:
        """The run id: Lightning names the checkpoint folder after it."""
        return self.run_id or ""

    @property
    def run_id(self) -> str | None:
        if self._run_id is None and rank_zero_only.rank == 0:
            _ = self.experiment
        return self._run_id

    @property
    def save_dir(self) -> str | None:
        return None

    @property
    @rank_zero_experiment
    def experiment(self) -> TrainingLogger:
        """The underlying `TrainingLogger`, opened on first use (or taken up again)."""
        if self._logger is None:
            self._logger = TrainingLogger(
                self._experiment_name,
                run_name=self._run_name,
                tracking_uri=self._tracking_uri,
                tags={"newsdesk.integration": "lightning", **self._tags},
                run_id=self._run_id,
            )
            self._run_id = self._logger.run_id
        return self._logger

    # ----- logging ----------------------------------------------------------------------------
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = self._last_step if step is None else int(step)
        self._last_step = step
        self.experiment.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Any, *args: Any, **kw: Any) -> None:
        """`params` is a mapping or, as Lightning also allows, an argparse `Namespace` (taken
        by its attributes, so this module needs no argparse)."""
        if not isinstance(params, Mapping):
            params = vars(params)
        self.experiment.log_params(_plain(params))

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No graph is logged; the module's class is kept to load the best checkpoint later."""
        self._module_class = class_path(type(model))
        self._carried_class = None if importable_elsewhere(type(model)) else type(model)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if isinstance(checkpoint_callback, ModelCheckpoint):
            self._checkpoint_callback = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._logger is None:
            return
        run_status = _status_of(status)
        logger, self._logger = self._logger, None
        try:
            if run_status is RunStatus.FINISHED and self._log_model:
                self._log_best_checkpoint(logger)
        except BaseException:
            logger.close(RunStatus.FAILED)
            raise
        logger.close(run_status)

    # ----- the best checkpoint as a model -----------------------------------------------------
    def _log_best_checkpoint(self, logger: TrainingLogger) -> None:
        callback = self._checkpoint_callback
        if callback is None or not callback.best_model_path or self._module_class is None:
            return
        best = callback.best_model_path
        if best == self._logged_checkpoint or not Path(best).exists():
            return
        tags = {CHECKPOINT_PATH_TAG: Path(best).name}
        if callback.monitor and callback.best_model_score is not None:
            score = float(callback.best_model_score)
            logger.log_metrics({f"best/{callback.monitor}": score}, step=self._last_step)
            tags.update({"checkpoint.monitor": callback.monitor, "checkpoint.mode": callback.mode})
        logger.set_tags(tags)
        if not logger.flush(timeout=60):
            raise TimeoutError(
                f"the tracking store did not store the params of run {logger.run_id} in 60s; "
                "the best checkpoint was not logged"
            )
        module_class = self._module_class
        carried = self._carried_class

        def save(local: Path) -> None:
            artifacts = {CHECKPOINT_KEY: best}
            if carried is not None:  # a loader could not import it: it travels pickled
                artifacts[CLASS_PICKLE_KEY] = str(pickle_class(carried, local.parent / "cls.pkl"))
            mlflow.pyfunc.save_model(
                str(local),
                python_model=str(MODEL_CODE),
                model_config={MODULE_CLASS_KEY: module_class},
                artifacts=artifacts,
                pip_requirements=pinned_requirements(_REQUIREMENTS),
            )

        self.model_uri = upload_pyfunc(logger.client, logger.run_id, MODEL_ARTIFACT, save)
        self._logged_checkpoint = best
