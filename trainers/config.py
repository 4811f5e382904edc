"""The training configuration, logged as `train.*` params and stored in checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: Literal["none", "linear"] = "none"
    clip_grad_norm: float = 5.0
    eval_every: int = 100
    eval_batch_size: int = 1024
    patience: int = 1000  # optimizer steps without improvement of `monitor`
    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    max_bad_losses: int = 5  # consecutive non-finite losses before giving up
    seed: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init: Literal["xavier", "kaiming", "normal"] = "xavier"
