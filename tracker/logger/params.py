"""Turning nested config dictionaries into MLflow params."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from tracker.store.mlflow_internals import MAX_PARAM_VAL_LENGTH


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings and dataclasses to dotted keys: {"m": {"h": 1}} -> {"m.h": 1}.

    Dotted keys keep the grouping of a nested config visible in the MLflow UI and in
    `runs_frame` columns, while MLflow itself only knows flat string params.
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def to_param_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten and stringify params, truncating values MLflow would refuse as too long.

    Truncation warns instead of failing: a long value (a vocabulary path list, say) should not
    stop a training run, but the user must know it was cut.
    """
    out: dict[str, str] = {}
    for key, value in flatten(params).items():
        text = str(value)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            warnings.warn(
                f"param {key!r} is {len(text)} characters long; truncated to MLflow's limit of "
                f"{MAX_PARAM_VAL_LENGTH}",
                stacklevel=3,
            )
            text = text[:MAX_PARAM_VAL_LENGTH]
        out[key] = text
    return out
