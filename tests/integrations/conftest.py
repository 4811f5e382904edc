"""A real slice of THUCNews as padded character ids, for the framework adapters' tiny models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

SEQ_LEN = 24


@dataclass(frozen=True)
class EncodedSlice:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    vocab_size: int
    num_classes: int


def _read(path: Path, n: int) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as fh:
        for line, _ in zip(fh, range(n), strict=False):
            text, label = line.rstrip("\n").split("\t")
            texts.append(text)
            labels.append(int(label))
    return texts, labels


def _encode(texts: list[str], vocab: dict[str, int]) -> torch.Tensor:
    ids = torch.zeros(len(texts), SEQ_LEN, dtype=torch.long)
    for row, text in enumerate(texts):
        for col, char in enumerate(text[:SEQ_LEN]):
            ids[row, col] = vocab.get(char, 1)
    return ids


@pytest.fixture(scope="session")
def encoded_slice(thucnews_dir: Path) -> EncodedSlice:
    train_texts, train_labels = _read(thucnews_dir / "train.txt", 512)
    val_texts, val_labels = _read(thucnews_dir / "dev.txt", 128)
    chars = sorted({c for t in train_texts for c in t})
    vocab = {c: i + 2 for i, c in enumerate(chars)}  # 0 padding, 1 unknown
    num_classes = len((thucnews_dir / "class.txt").read_text(encoding="utf-8").split())
    return EncodedSlice(
        _encode(train_texts, vocab),
        torch.tensor(train_labels),
        _encode(val_texts, vocab),
        torch.tensor(val_labels),
        len(vocab) + 2,
        num_classes,
    )
