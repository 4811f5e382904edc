"""TextCNN (Kim 2014): convolutions of widths 2, 3, 4 over embeddings, max-pooled over time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainers.models.embedding import token_embedding


@dataclass(frozen=True)
class TextCNNConfig:
    embed_dim: int = 200
    filter_sizes: tuple[int, ...] = (2, 3, 4)
    num_filters: int = 256
    dropout: float = 0.5


class TextCNN(nn.Module):
    def __init__(
        self,
        config: TextCNNConfig,
        vocab_size: int,
        num_classes: int,
        pretrained: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.embedding = token_embedding(vocab_size, config.embed_dim, pretrained)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embed_dim, config.num_filters, k) for k in config.filter_sizes
        )
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(config.num_filters * len(config.filter_sizes), num_classes)

    @property
    def trailing_pad_needed(self) -> int:
        """Padding after a batch's longest text that keeps the output exact when the rest is
        cut off (prediction sorts texts by length and trims each batch): every window that
        touches a real token, plus one all-padding window per width, whose value the
        max-pool may pick."""
        return max(self.config.filter_sizes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).transpose(1, 2)  # [B, E, L]
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))
