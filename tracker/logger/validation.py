"""Validation of metric, param and artifact names and of steps, in the caller's thread.

A name MLflow would refuse must fail at the call that introduced it, not seconds later in the
shipper process, where no traceback points at the user's code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from mlflow.exceptions import MlflowException

from tracker.store.mlflow_internals import MAX_ENTITY_KEY_LENGTH, NAME_VALIDATORS

# MLflow stores steps as a signed 64-bit integer; a larger step is refused by the store only
# when the batch is written (and was retried forever), so it is refused at the call instead.
STEP_MIN = -(2**63)
STEP_MAX = 2**63 - 1


def _check(kind: str, name: str) -> None:
    if not isinstance(name, str):
        raise ValueError(f"{kind} name must be a string, got {type(name).__name__}: {name!r}")
    if len(name) > MAX_ENTITY_KEY_LENGTH:
        raise ValueError(
            f"{kind} name {name[:40]!r}... is {len(name)} characters; MLflow allows "
            f"{MAX_ENTITY_KEY_LENGTH}"
        )
    try:
        NAME_VALIDATORS[kind](name)
    except MlflowException as exc:
        raise ValueError(f"invalid {kind} name {name!r}: {exc.message}") from None


def validate_metric_name(name: str) -> None:
    _check("metric", name)


def validate_param_name(name: str) -> None:
    _check("param", name)


def validate_tag_name(name: str) -> None:
    _check("tag", name)


def validate_artifact_path(path: str) -> str:
    """Refuse artifact names that could escape the run's artifact folder.

    Returns the name in POSIX form. Absolute paths and `..` components are refused before
    anything is written, so a crafted name can never overwrite files outside the run.
    """
    if not path or not isinstance(path, str):
        raise ValueError(f"artifact path must be a non-empty string, got {path!r}")
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
        raise ValueError(f"artifact path {path!r} is absolute; give a path relative to the run")
    if ".." in posix.parts:
        raise ValueError(f"artifact path {path!r} contains '..'; it must stay inside the run")
    return str(posix)


def validate_step(step: Any) -> int:
    """Accept integral numbers (numpy ints, 3.0) as steps; refuse None, bools and fractions.

    A step that silently became 0 would pile every point onto one x position, so anything
    that is not clearly an integer is a TypeError at the call; an integer outside MLflow's
    int64 range is a ValueError.
    """
    if step is None or isinstance(step, bool):
        raise TypeError(f"step must be an int, got {step!r}")
    try:
        as_float = float(step)
    except (TypeError, ValueError):
        raise TypeError(f"step must be an int, got {step!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise TypeError(f"step must be an int, got {step!r}")
    value = int(step) if isinstance(step, int) else int(as_float)
    if not STEP_MIN <= value <= STEP_MAX:
        raise ValueError(f"step {value} is outside MLflow's int64 range [-2**63, 2**63 - 1]")
    return value


def metric_values(metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(name, float value) per metric; a value that is not a number is a ValueError naming
    the metric, at the call (the store would refuse the whole batch it travels in)."""
    values = []
    for key, value in metrics.items():
        if isinstance(value, str | bytes):
            raise ValueError(f"metric {key!r}: value must be a number, got {value!r}")
        try:
            values.append((key, float(value)))
        except (TypeError, ValueError):
            raise ValueError(
                f"metric {key!r}: value must be a number, got {type(value).__name__}: "
                f"{str(value)[:60]!r}"
            ) from None
    return values
