"""The logger contract that training code depends on.

`trainers` only ever sees this protocol, so a training loop can be driven by the MLflow-backed
`TrainingLogger` in production and by the `MemoryLogger` in tests and dry runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class RunStatus(StrEnum):
    """Terminal states of a run, named as MLflow names them."""

    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class TerminatedBySignal(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that it ends a run KILLED as Ctrl-C does."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(f"received signal {signum}")
        self.signum = signum


def status_on_exit(exc_type: type[BaseException] | None) -> RunStatus:
    """How a logger's `with` block ends the run: FINISHED, KILLED on Ctrl-C or SIGTERM, else
    FAILED."""
    if exc_type is None:
        return RunStatus.FINISHED
    if issubclass(exc_type, KeyboardInterrupt | TerminatedBySignal):
        return RunStatus.KILLED
    return RunStatus.FAILED


@runtime_checkable
class MetricLogger(Protocol):
    """What a training loop may do with a logger.

    `log_metrics` must return at once (it runs on the per-batch hot path); `step` is keyword-only
    and required so that no point silently lands on step 0.
    """

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None: ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...

    def log_figure(self, figure: Any, artifact_file: str) -> None: ...

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None: ...

    def log_model(self, model: Any, name: str, **kwargs: Any) -> str | None: ...

    def log_input(
        self, name: str, *, context: str, digest: str, source: str, num_rows: int
    ) -> None:
        """Record a dataset the run used (MLflow's dataset inputs: the run page then says
        which data it used, and runs on different data are told apart)."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything handed over is stored; False when `timeout` ran out first."""
        ...

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None: ...
