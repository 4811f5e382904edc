"""Pretrained token vectors (`tokens`, `vectors` in an .npz), aligned to a vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.data.corpus import DataError
from trainers.data.vocab import Vocab


@dataclass(frozen=True)
class AlignedEmbeddings:
    weight: torch.Tensor  # [len(vocab), dim]
    covered: int  # vocabulary entries found in the file

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])


def load_embeddings(path: Path, vocab: Vocab, seed: int = 0) -> AlignedEmbeddings:
    """Rows for known tokens come from the file; others are small random vectors, <pad> zero."""
    if not path.is_file():
        raise DataError(f"{path}: embeddings file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            tokens, vectors = data["tokens"], data["vectors"]
    except KeyError as exc:
        raise DataError(f"{path}: needs arrays 'tokens' and 'vectors' ({exc} missing)") from None
    except ValueError as exc:
        raise DataError(f"{path}: not a plain .npz of tokens and vectors ({exc})") from None
    if vectors.ndim != 2 or len(tokens) != len(vectors):
        raise DataError(f"{path}: 'vectors' must be [len(tokens), dim], got {vectors.shape}")
    index = {str(t): i for i, t in enumerate(tokens.tolist())}
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(len(vocab), vectors.shape[1], generator=generator) * float(vectors.std())
    weight[0] = 0.0
    source = torch.from_numpy(vectors.astype(np.float32))
    covered = 0
    for i, token in enumerate(vocab.tokens):
        row = index.get(token)
        if row is not None:
            weight[i] = source[row]
            covered += 1
    return AlignedEmbeddings(weight=weight, covered=covered)
