"""Checkpoints: weights plus everything needed to predict on raw text.

A checkpoint holds only tensors and plain Python values (str, int, float, lists, dicts), so it
loads with `torch.load(weights_only=True)`: loading one can never run code.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "newsdesk-checkpoint/1"


def checkpoint_dict(
    model_name: str,
    model_config: Any,
    label_names: list[str],
    tokenizer: str,
    weights: dict[str, Any],
    extra: dict | None = None,
) -> dict:
    """Every model's checkpoint: what names and configures it, its `weights` (whatever the
    model stores: a state dict and vocabulary, or a linear model's features), and `extra`
    (the run id, the dataset fingerprint)."""
    return {
        "format": FORMAT,
        "model_name": model_name,
        "model_config": dataclasses.asdict(model_config),
        **weights,
        "label_names": list(label_names),
        "tokenizer": tokenizer,
        **(extra or {}),
    }


def make_checkpoint(
    model: nn.Module,
    model_name: str,
    model_config: Any,
    vocab_tokens: tuple,
    label_names: list[str],
    tokenizer: str,
    pad_size: int,
    extra: dict | None = None,
) -> dict:
    """The checkpoint of a model the training loop trained: its state dict and vocabulary."""
    weights = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **packed_vocab(vocab_tokens),
        "pad_size": pad_size,
    }
    return checkpoint_dict(model_name, model_config, label_names, tokenizer, weights, extra)


def save_checkpoint(checkpoint: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a newsdesk checkpoint")
    return checkpoint


def packed_vocab(tokens: tuple | list) -> dict[str, Any]:
    """The vocabulary as one string and each token's length, not a list of strings.

    Why: torch's weights-only unpickler reads a list of hundreds of thousands of strings
    (FastText's `ngrams` vocabulary on THUCNews-45k) slowly enough to be a large part of
    predicting; one string and a tensor of lengths load and split back in a small fraction
    of that."""
    return {
        "vocab_text": "".join(tokens),
        "vocab_lengths": torch.tensor([len(t) for t in tokens], dtype=torch.int32),
    }


def checkpoint_vocab(checkpoint: dict) -> tuple[str, ...]:
    """The vocabulary's tokens, packed (`packed_vocab`) or, as written before, a list."""
    if "vocab_text" not in checkpoint:
        return tuple(checkpoint["vocab"])
    text = checkpoint["vocab_text"]
    ends = list(itertools.accumulate(checkpoint["vocab_lengths"].tolist()))
    if (ends[-1] if ends else 0) != len(text):
        raise ValueError("the checkpoint's vocabulary is damaged: lengths do not match its text")
    return tuple(text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True))
