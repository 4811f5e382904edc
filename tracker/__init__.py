"""newsdesk's tracking side, framework-agnostic: nothing here imports model code.

The rooms, by concern (each package's docstring says what it owns):

- `tracker.interface` and `tracker.schema`: the contract with training code (the logger
  protocol; the metric, tag and artifact names). `trainers` imports nothing else from here.
- `tracker.cli`: the `newsdesk` command and the tracker's own commands; other packages add
  commands through the `newsdesk.commands` entry-point group.
- `tracker.logger`: the API a loop calls (`TrainingLogger`, `MemoryLogger`, resume helpers,
  model logging).
- `tracker.shipping`: how points reach the store exactly once (the write-ahead log, the
  shipper, `sync`).
- `tracker.store`: which store runs go to, experiments, access checks, MLflow internals.
- `tracker.dashboard`: runs as DataFrames, the comparison figure, registry and promotion,
  prediction with a registered model.
- `tracker.server`: a real `mlflow server` and its private PostgreSQL.
- `tracker.integrations`: `NewsdeskLogger` (Lightning) and `NewsdeskCallback` (Hugging Face),
  optional extras.

The names below are the public API of the logger. They load on first use (PEP 562), so that
`import tracker.schema` or the `newsdesk` command's parsing pays no MLflow import: a training
script that uses `TrainingLogger` pays it when it names it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.interface import MetricLogger, RunStatus, TerminatedBySignal
    from tracker.logger.memory_logger import MemoryLogger
    from tracker.logger.mlflow_logger import TrainingLogger
    from tracker.shipping.config import WriterConfig

# Each public name and the module that defines it.
_PUBLIC = {
    "MemoryLogger": "tracker.logger.memory_logger",
    "MetricLogger": "tracker.interface",
    "RunStatus": "tracker.interface",
    "TerminatedBySignal": "tracker.interface",
    "TrainingLogger": "tracker.logger.mlflow_logger",
    "WriterConfig": "tracker.shipping.config",
}

__all__ = [
    "MemoryLogger",
    "MetricLogger",
    "RunStatus",
    "TerminatedBySignal",
    "TrainingLogger",
    "WriterConfig",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
