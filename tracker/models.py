"""Logging a checkpoint as an MLflow pyfunc model that predicts on raw text.

The pyfunc wrapper is generic: it knows a checkpoint file and the import path of a loader
(`package.module:function`) that turns the checkpoint into an object with `predict_frame`.
The tracker thus logs and serves models without importing any model code itself.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelStatus
from mlflow.models import Model, infer_signature
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

if TYPE_CHECKING:
    from tracker.mlflow_logger import TrainingLogger

TEXT_COLUMN = "text"


def texts_of(model_input: Any) -> list[str]:
    """Accept a DataFrame with a `text` column (or a single column), a Series or a list."""
    if isinstance(model_input, pd.DataFrame):
        column = TEXT_COLUMN if TEXT_COLUMN in model_input.columns else model_input.columns[0]
        return [str(t) for t in model_input[column].tolist()]
    if isinstance(model_input, pd.Series):
        return [str(t) for t in model_input.tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in model_input]


class CheckpointTextModel(mlflow.pyfunc.PythonModel):
    def __init__(self, loader: str) -> None:
        self.loader = loader
        self._predictor: Any = None

    def load_context(self, context) -> None:
        self._predictor = load_object(self.loader, context.artifacts["checkpoint"])

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return self._predictor.predict_frame(texts_of(model_input))

    @property
    def predictor(self) -> Any:
        return self._predictor


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    log = logging.getLogger(logger_name)
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def load_object(loader: str, argument: str) -> Any:
    module_name, _, func = loader.partition(":")
    return getattr(importlib.import_module(module_name), func)(argument)


def _requirements() -> list[str]:
    reqs = []
    for package in ("mlflow", "torch", "pandas", "numpy", "jieba", "scikit-learn"):
        try:
            reqs.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def log_pyfunc_model(
    logger: TrainingLogger,
    checkpoint: Path,
    name: str,
    *,
    loader: str,
    input_example: list[str],
    code_packages: list[str] | None = None,
) -> str:
    """Log `checkpoint` as pyfunc model `name` in the logger's run; returns the model URI.

    MLflow's `Model.log` reads the process-wide tracking URI, so it is pointed at the logger's
    store only for the duration of this call.
    """
    example = pd.DataFrame({TEXT_COLUMN: input_example})
    predictor = load_object(loader, str(checkpoint))
    with warnings.catch_warnings():
        # label_id is an integer column on purpose: predictions never have missing values.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, predictor.predict_frame(input_example))
    code_paths = [
        str(Path(importlib.import_module(p).__file__).parent) for p in (code_packages or [])
    ]
    # Model.log would file the LoggedModel under the process's active experiment, so it is
    # created here in the run's own experiment and handed over by id.
    logger.flush()
    run = logger.client.get_run(logger.run_id)
    logged = logger.client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=logger.run_id,
        params=dict(run.data.params),
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    )
    # The python_model is an instance of an importable class holding one string (the loader
    # path), so MLflow's generic warning about pickled Python objects is silenced here.
    with _use_tracking_uri(logger.location.tracking_uri), _quiet("mlflow.pyfunc"):
        info = Model.log(
            artifact_path=None,
            model_id=logged.model_id,
            name=name,
            flavor=mlflow.pyfunc,
            run_id=logger.run_id,
            python_model=CheckpointTextModel(loader),
            artifacts={"checkpoint": str(checkpoint)},
            signature=signature,
            input_example=example,
            code_paths=code_paths or None,
            pip_requirements=_requirements(),
        )
    logger.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return info.model_uri
