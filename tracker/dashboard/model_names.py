"""The registry's names newsdesk uses: the aliases it moves and the default model name.

A module of its own, free of MLflow, so that `newsdesk predict` can name the champion without
importing the registry code (`tracker.dashboard.registry`), which needs MLflow.
"""

from __future__ import annotations

CHAMPION, PREVIOUS = "champion", "previous"


def default_model_name(experiment: str) -> str:
    """The registered model an experiment's runs are promoted into."""
    return f"{experiment}-classifier"
