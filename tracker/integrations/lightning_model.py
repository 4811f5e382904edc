"""A Lightning checkpoint as an MLflow pyfunc model: numbers in, the module's outputs out.

Saved as "models from code" (`lightning_model_code.py`, the LightningModule's import path as
model configuration, the `.ckpt` as an artifact), so the registry can hold, promote and serve
the best checkpoint of a `ModelCheckpoint` (Lightning's own MLflow logger only uploads `.ckpt`
files, which the registry cannot load). The module class must be importable where the model is
loaded, as for any Lightning checkpoint.
"""

from __future__ import annotations

import pkgutil
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

MODULE_CLASS_KEY = "module_class"
CHECKPOINT_KEY = "checkpoint"


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def frame_to_array(model_input: Any) -> np.ndarray:
    """A DataFrame, a list of rows or an array as one numeric array (integers stay integers:
    they are token ids)."""
    if isinstance(model_input, pd.DataFrame):
        model_input = model_input.to_numpy()
    array = np.asarray(model_input)
    if array.dtype == object:
        array = np.asarray(array.tolist())
    return array


class LightningCheckpointModel(mlflow.pyfunc.PythonModel):
    """Loads `module_class.load_from_checkpoint(ckpt)` and runs its forward on the input."""

    def __init__(self) -> None:
        self._module: Any = None

    def load_context(self, context) -> None:
        cls = pkgutil.resolve_name(context.model_config[MODULE_CLASS_KEY])
        self._module = cls.load_from_checkpoint(
            context.artifacts[CHECKPOINT_KEY], map_location="cpu"
        )
        self._module.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import torch

        array = frame_to_array(model_input)
        dtype = torch.long if np.issubdtype(array.dtype, np.integer) else torch.float32
        with torch.no_grad():
            output = self._module(torch.tensor(array, dtype=dtype))
        values = output.detach().cpu().numpy()
        if values.ndim == 1:
            values = values[:, None]
        return pd.DataFrame(values, columns=[f"output_{i}" for i in range(values.shape[1])])
