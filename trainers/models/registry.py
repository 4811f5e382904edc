"""Model names to (config class, model class), and building a model from a config dict.

`--model all` trains every name in `CONFIGS`: the linear baseline first, then the neural
models, so each comparison shows the bar beside them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trainers.models.fasttext import FastText, FastTextConfig
from trainers.models.linear import NAME as LINEAR
from trainers.models.linear import LinearConfig
from trainers.models.lstm import LSTMClassifier, LSTMConfig
from trainers.models.ngram_bag import with_derived_buckets, with_derived_ngrams
from trainers.models.textcnn import TextCNN, TextCNNConfig

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "fasttext": (FastTextConfig, FastText),
    "textcnn": (TextCNNConfig, TextCNN),
    "lstm": (LSTMConfig, LSTMClassifier),
}


# Every model's config class: the neural ones and the linear baseline (not a torch module).
CONFIGS: dict[str, type] = {
    LINEAR: LinearConfig,
    **{name: config for name, (config, _) in MODELS.items()},
}


def make_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The model's frozen config with `overrides` (already typed) applied."""
    if name not in CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(CONFIGS)}")
    config_cls = CONFIGS[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(overrides or {}) - fields
    if unknown:
        raise ValueError(
            f"unknown {name} setting(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(fields))}"
        )
    return config_cls(**(overrides or {}))


def build_model(
    name: str,
    config,
    vocab_size: int,
    num_classes: int,
    pretrained: torch.Tensor | None = None,
    random_init: bool = True,
) -> nn.Module:
    """`random_init=False` leaves the large tables uninitialised, for a checkpoint's weights
    loaded right after."""
    _, model_cls = MODELS[name]
    # A training run has derived them already.
    config = with_derived_buckets(with_derived_ngrams(config, None), None)
    return model_cls(config, vocab_size, num_classes, pretrained, random_init)


def config_from_dict(name: str, values: Mapping[str, Any]):
    """Rebuild a config stored in a checkpoint (lists come back as tuples). A setting the
    checkpoint predates takes the value its absence meant (`ABSENT`), not today's default."""
    config_cls, _ = MODELS[name]
    typed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_cls(**{**getattr(config_cls, "ABSENT", {}), **typed})
