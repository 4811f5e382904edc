"""The one-value calls MLflow users type first (`log_metric`, `log_param`, `set_tag`), in terms
of the mapping calls every newsdesk logger has; `step` stays required."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SingularCalls:
    """Mixed into a logger that has `log_metrics`, `log_params` and `set_tags`."""

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        raise NotImplementedError

    def log_params(self, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def log_metric(self, key: str, value: float, *, step: int) -> None:
        """One metric: `log_metrics({key: value}, step=step)`."""
        self.log_metrics({key: value}, step=step)

    def log_param(self, key: str, value: Any) -> None:
        """One param: `log_params({key: value})`."""
        self.log_params({key: value})

    def set_tag(self, key: str, value: Any) -> None:
        """One tag: `set_tags({key: value})`."""
        self.set_tags({key: value})
