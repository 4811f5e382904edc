"""`MemoryLogger`: the in-memory twin of `TrainingLogger` for tests and dry runs.

It keeps what a training loop hands over, in order, so a test can assert the exact sequence of
`(step, keys)` without a store; it enforces the same contract (keyword-only step, valid names,
closed loggers refuse new points).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tracker.interface import RunStatus, status_on_exit
from tracker.logger.params import to_param_values
from tracker.logger.singulars import SingularCalls
from tracker.logger.validation import (
    metric_values,
    validate_artifact_path,
    validate_metric_name,
    validate_step,
)


class MemoryLogger(SingularCalls):
    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.run_id = f"memory-{uuid.uuid4().hex}"
        self.records: list[tuple[int, dict[str, float]]] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.artifacts: dict[str, Any] = {}
        self.models: dict[str, Any] = {}
        self.inputs: list[dict[str, Any]] = []
        self.status: RunStatus | None = None
        if params:
            self.log_params(params)

    def __enter__(self) -> MemoryLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(status_on_exit(exc_type))

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        if self.status is not None:
            raise RuntimeError("logger is closed")
        step = validate_step(step)
        for key in metrics:
            validate_metric_name(key)
        self.records.append((step, dict(metric_values(metrics))))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(to_param_values(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"artifact {source} does not exist")
        name = source.name if artifact_path is None else f"{artifact_path}/{source.name}"
        self.artifacts[validate_artifact_path(name)] = source

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.artifacts[validate_artifact_path(artifact_file)] = figure

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        json.dumps(dictionary)  # the same values must be serialisable for the real logger
        self.artifacts[validate_artifact_path(artifact_file)] = dict(dictionary)

    def log_model(self, model: Any, name: str, **kwargs: Any) -> str | None:
        self.models[name] = model
        return None

    def log_input(
        self, name: str, *, context: str, digest: str, source: str, num_rows: int
    ) -> None:
        self.inputs.append(
            {
                "name": name,
                "context": context,
                "digest": digest,
                "source": source,
                "num_rows": num_rows,
            }
        )

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None:
        if self.status is None:
            self.status = RunStatus(status)

    def history(self, key: str) -> list[tuple[int, float]]:
        """(step, value) pairs of one metric, in the order logged."""
        return [(step, m[key]) for step, m in self.records if key in m]
