"""The token embedding shared by TextCNN and the LSTM: random, or pretrained and fine-tuned."""

from __future__ import annotations

import torch
from torch import nn


def token_embedding(
    vocab_size: int,
    dim: int,
    pretrained: torch.Tensor | None,
    sparse: bool = False,
    random_init: bool = True,
) -> nn.Embedding:
    """`<pad>` (id 0) stays a zero vector that receives no gradient.

    `sparse`: the table is updated by SparseAdam at `train.sparse_lr`, only in the rows a
    batch holds. With characters and words the vocabulary is 50,000 rows; Adam's dense update
    of all of them was half of a TextCNN or LSTM step on two CPU cores.

    `random_init=False`: left uninitialised, for weights loaded right after (prediction)."""
    if not random_init:
        empty = torch.empty(vocab_size, dim)
        return nn.Embedding(vocab_size, dim, padding_idx=0, sparse=sparse, _weight=empty)
    if pretrained is None:
        return nn.Embedding(vocab_size, dim, padding_idx=0, sparse=sparse)
    if pretrained.shape != (vocab_size, dim):
        raise ValueError(
            f"pretrained vectors are {tuple(pretrained.shape)}, model needs ({vocab_size}, {dim});"
            " set model.embed_dim to match"
        )
    return nn.Embedding.from_pretrained(
        pretrained.clone(), freeze=False, padding_idx=0, sparse=sparse
    )
