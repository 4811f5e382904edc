"""A Lightning checkpoint as an MLflow pyfunc model: numbers in, the module's outputs out.

Saved as "models from code" (`lightning_model_code.py`, the LightningModule's import path as
model configuration, the `.ckpt` as an artifact), so the registry can hold, promote and serve
the best checkpoint of a `ModelCheckpoint` (Lightning's own MLflow logger only uploads `.ckpt`
files, which the registry cannot load). The module class is found by its import path where
the model is loaded, as for any Lightning checkpoint; a class defined in the training script
itself (`__main__`), which no other process can import, travels with the model instead,
pickled by value with cloudpickle (what MLflow does with a `PythonModel` from `__main__`).
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

MODULE_CLASS_KEY = "module_class"
CHECKPOINT_KEY = "checkpoint"
# The artifact holding a class pickled by value, for classes no loader could import.
CLASS_PICKLE_KEY = "module_class_pickle"


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def importable_elsewhere(cls: type) -> bool:
    """False for a class that another process cannot import by its path: one defined in the
    running script (`__main__`) or inside a function."""
    return cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__


def pickle_class(cls: type, target: Path) -> Path:
    """Write `cls` pickled by value (its methods' code and the script globals they use)."""
    import cloudpickle

    with target.open("wb") as fh:
        cloudpickle.dump(cls, fh)
    return target


def _module_class(context: Any) -> type:
    pickled = context.artifacts.get(CLASS_PICKLE_KEY)
    if pickled:
        import cloudpickle

        with open(pickled, "rb") as fh:
            return cloudpickle.load(fh)
    return pkgutil.resolve_name(context.model_config[MODULE_CLASS_KEY])


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
        cls = _module_class(context)
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
