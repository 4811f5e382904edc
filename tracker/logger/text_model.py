"""Logging a checkpoint as an MLflow pyfunc model that predicts on raw text.

The pyfunc wrapper is generic: it knows a checkpoint file and the import path of a loader
(`package.module:function`) that turns the checkpoint into an object with `predict_frame`.
The tracker thus logs and serves models without importing any model code itself.

The model is saved as "models from code" (`text_model_code.py` plus the loader path as model
configuration and the checkpoint as an artifact), so loading it never unpickles anything. It is
saved to a local folder and uploaded to a LoggedModel through an explicit `MlflowClient`:
nothing here reads or changes MLflow's process-wide tracking URI, so a model always lands in the
store of the run that logged it.
"""

from __future__ import annotations

import importlib
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from tracker.logger.pyfunc_upload import pinned_requirements, upload_pyfunc
from tracker.logger.text_input import TEXT_COLUMN, texts_of

LOADER_KEY = "loader"
CHECKPOINT_KEY = "checkpoint"
MODEL_CODE = Path(__file__).with_name("text_model_code.py")


class CheckpointTextModel(mlflow.pyfunc.PythonModel):
    """Raw text in, label and class probabilities out, from a checkpoint and its loader.

    The loader (`package.module:function`) comes from the model's configuration and the
    checkpoint from its artifacts, both given to `load_context`.
    """

    def __init__(self) -> None:
        self._predictor: Any = None

    def load_context(self, context) -> None:
        loader = context.model_config[LOADER_KEY]
        self._predictor = load_object(loader, context.artifacts[CHECKPOINT_KEY])

    # The type hint says what goes in; the signature logged with the model says its columns.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self._predictor.predict_frame(texts_of(model_input))

    @property
    def predictor(self) -> Any:
        return self._predictor


def load_object(loader: str, argument: str) -> Any:
    module_name, _, func = loader.partition(":")
    return getattr(importlib.import_module(module_name), func)(argument)


_REQUIREMENTS = ("mlflow", "torch", "pandas", "numpy", "jieba", "scikit-learn")

# The model's code, one archive in its `code/` folder; `text_model_code.py` puts it on the
# import path (Python imports modules from a zip archive on `sys.path`).
CODE_ARCHIVE = "newsdesk-code.zip"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same code, the same bytes


def write_code_archive(packages: list[str], archive: Path) -> Path:
    """The `.py` files of the importable `packages`, under their package paths, in one zip.

    Why one file: a model's artifacts are uploaded one HTTP request per file, and the tracker
    and trainers packages as folders were most of the files of every text model; behind basic
    auth each request checks the password, so a short training spent longer uploading its
    code than training. Entries are sorted and dated alike, so the same code gives the same
    archive."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in packages:
            root = Path(importlib.import_module(package).__file__).parent
            for source in sorted(root.rglob("*.py")):
                name = source.relative_to(root.parent).as_posix()
                entry = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(entry, source.read_bytes())
    return archive


def log_text_model(
    client: MlflowClient,
    run_id: str,
    checkpoint: Path,
    name: str,
    *,
    loader: str,
    input_example: list[str],
    code_packages: list[str] | None = None,
) -> str:
    """Log `checkpoint` as pyfunc model `name` of run `run_id`; returns `models:/<model_id>`.

    The LoggedModel is created in the run's own experiment (MLflow's `log_model` would file it
    under the process's active experiment and store), saved locally, uploaded, and marked
    READY only once its files are in place.
    """
    example = pd.DataFrame({TEXT_COLUMN: input_example})
    predictor = load_object(loader, str(checkpoint))
    with warnings.catch_warnings():
        # label_id is an integer column on purpose: predictions never have missing values.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, predictor.predict_frame(input_example))

    def save(local: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            code_paths = (
                [str(write_code_archive(code_packages, Path(tmp) / CODE_ARCHIVE))]
                if code_packages
                else None
            )
            mlflow.pyfunc.save_model(
                str(local),
                python_model=str(MODEL_CODE),
                model_config={LOADER_KEY: loader},
                artifacts={CHECKPOINT_KEY: str(checkpoint)},
                signature=signature,
                input_example=example,
                code_paths=code_paths,
                pip_requirements=pinned_requirements(_REQUIREMENTS),
            )

    return upload_pyfunc(client, run_id, name, save)
