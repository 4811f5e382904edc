"""One run per job under `torchrun`/DDP: only the process of global rank 0 logs.

Every process of a distributed job runs the same script; a `TrainingLogger` opened in each
would make N runs. `rank_zero_logger` opens the real logger on rank 0 and a `NullLogger` on
the others, so a DDP loop keeps one line for its logger and needs no `if rank == 0` around
each call. The rank is read from the environment that `torchrun` (and `newsdesk train
--nproc`) set, or from `torch.distributed` when the process group is already initialised;
torch is never imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tracker.interface import MetricLogger, RunStatus


def process_rank() -> int:
    """The global rank of this process: 0 outside a distributed job."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    for variable in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(variable)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


class NullLogger:
    """The logger of ranks other than 0: accepts every call and stores nothing (`run_id` is
    the job's run when the caller knows it, else empty)."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id

    def __enter__(self) -> NullLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        return None

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        return None

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        return None

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        return None

    def log_model(self, model: Any, name: str, **kwargs: Any) -> str | None:
        return None

    def log_input(
        self, name: str, *, context: str, digest: str, source: str, num_rows: int
    ) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, status: RunStatus = RunStatus.FINISHED) -> None:
        return None


def rank_zero_logger(experiment: str, **kwargs: Any) -> MetricLogger:
    """A `TrainingLogger(experiment, **kwargs)` on global rank 0, a `NullLogger` elsewhere.

    The rank is torch.distributed's once it is initialised, else the environment's (`RANK`,
    `SLURM_PROCID`); `kwargs` are
    `TrainingLogger`'s. Every rank takes part in whatever collective computes a value, and
    only rank 0's call stores it; the `NullLogger` accepts and drops every call, so the same
    loop runs on every rank.

    Usage in a script started by `torchrun --nproc-per-node N train.py`::

        with rank_zero_logger("thucnews", run_name="ddp") as log:
            ...
            log.log_metrics({"train/loss": averaged_loss}, step=step)   # rank 0 stores it
    """
    if process_rank() != 0:
        return NullLogger()
    from tracker.logger.mlflow_logger import TrainingLogger

    return TrainingLogger(experiment, **kwargs)
