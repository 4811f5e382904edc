"""Weight initialisation as the original tutorial describes it: embeddings are left alone."""

from __future__ import annotations

from typing import Literal

from torch import nn

InitName = Literal["xavier", "kaiming", "normal"]


def init_weights(model: nn.Module, method: InitName = "xavier") -> None:
    """`method` for every weight matrix, zero for biases; embedding tables are excluded."""
    embeddings = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag)
        for p in m.parameters()
    }
    for name, param in model.named_parameters():
        if id(param) in embeddings:
            continue
        if "bias" in name:
            nn.init.zeros_(param)
        elif param.dim() >= 2:
            if method == "xavier":
                nn.init.xavier_normal_(param)
            elif method == "kaiming":
                nn.init.kaiming_normal_(param)
            elif method == "normal":
                nn.init.normal_(param, std=0.02)
            else:
                raise ValueError(f"unknown init {method!r}; choose xavier, kaiming or normal")
