"""newsdesk's tracking side: the training logger, store handling, comparison and registry.

Framework-agnostic: nothing here imports model code.
"""

from tracker.interface import MetricLogger, RunStatus
from tracker.memory_logger import MemoryLogger
from tracker.mlflow_logger import TerminatedBySignal, TrainingLogger
from tracker.writer import WriterConfig

__all__ = [
    "MemoryLogger",
    "MetricLogger",
    "RunStatus",
    "TerminatedBySignal",
    "TrainingLogger",
    "WriterConfig",
]
