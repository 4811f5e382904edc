"""The texts in whatever a text model's `predict` is given, without importing pandas.

Shared by the pyfunc wrapper (`text_model`) and the MLflow-free loading of `newsdesk predict`
(`tracker.dashboard.model_files`), so both accept the same inputs."""

from __future__ import annotations

from typing import Any

TEXT_COLUMN = "text"


def texts_of(model_input: Any) -> list[str]:
    """A frame's `text` column (or its first column), a series, a list, or one string."""
    if isinstance(model_input, str):
        return [model_input]
    columns = getattr(model_input, "columns", None)
    if columns is not None:
        column = TEXT_COLUMN if TEXT_COLUMN in columns else columns[0]
        return [str(t) for t in model_input[column].tolist()]
    if hasattr(model_input, "tolist"):
        return [str(t) for t in model_input.tolist()]
    return [str(t) for t in model_input]
