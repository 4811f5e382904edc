"""Building a model and its config from the catalogue (`trainers.catalogue`) by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trainers.catalogue import model_spec
from trainers.models.ngram_bag import with_derived_buckets, with_derived_ngrams


def make_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The model's frozen config with `overrides` (already typed) applied."""
    config_cls = model_spec(name).config_class()
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
    model_cls = model_spec(name).model_class()
    # A training run has derived them already.
    config = with_derived_buckets(with_derived_ngrams(config, None), None)
    return model_cls(config, vocab_size, num_classes, pretrained, random_init)


def config_from_dict(name: str, values: Mapping[str, Any]):
    """Rebuild a config stored in a checkpoint (lists come back as tuples). A setting the
    checkpoint predates takes the value its absence meant (`ABSENT`), not today's default."""
    config_cls = model_spec(name).config_class()
    typed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_cls(**{**getattr(config_cls, "ABSENT", {}), **typed})
