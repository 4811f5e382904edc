"""TextCNN (Kim 2014): convolutions of widths 2, 3, 4 over embeddings, max-pooled over time,
with a bag of hashed n-grams beside them (`bag_dim`; 0 leaves the plain TextCNN)."""

from __future__ import annotations

import torch
from torch import nn

from trainers.models.derived import Derived, inferring
from trainers.models.embedding import token_embedding
from trainers.models.ngram_bag import bag_and_classifier, classify
from trainers.models.settings import TextCNNConfig

# Entries of the inference token table (`TextCNN._token_table`): 64 M floats, 256 MiB.
_MAX_TABLE_ENTRIES = 64 << 20


class TextCNN(nn.Module):
    def __init__(
        self,
        config: TextCNNConfig,
        vocab_size: int,
        num_classes: int,
        pretrained: torch.Tensor | None = None,
        random_init: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.embedding = token_embedding(
            vocab_size, config.embed_dim, pretrained, config.sparse_embedding, random_init
        )
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embed_dim, config.num_filters, k) for k in config.filter_sizes
        )
        self.dropout = nn.Dropout(config.dropout)
        self.bag, self.fc = bag_and_classifier(
            config,
            vocab_size,
            config.num_filters * len(config.filter_sizes),
            num_classes,
            random_init,
        )
        self._tables: Derived[tuple[torch.Tensor | None, torch.Tensor]] = Derived()

    @property
    def trailing_pad_needed(self) -> int:
        """Padding after a batch's longest text that keeps the output exact when the rest is
        cut off (prediction sorts texts by length and trims each batch): every window that
        touches a real token, plus one all-padding window per width, whose value the
        max-pool may pick."""
        return max(self.config.filter_sizes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not inferring(self) or ids.shape[1] < max(self.config.filter_sizes):
            x = self.embedding(ids).transpose(1, 2)  # [B, E, L]
            pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        else:
            pooled = self._pooled_from_table(ids)
        features = torch.cat(pooled, dim=1)
        return classify(self, features, ids)

    def _token_table(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Inference only: what every filter offset of every width makes of every token's
        embedding, one row per vocabulary entry (the embedding table times the stacked filter
        weights), and those stacked weights. Remade when a parameter changed (an evaluation
        during training); the table is None when it would be too large (a word vocabulary),
        then the product is per batch."""
        params = (self.embedding.weight, *(c.weight for c in self.convs))
        return self._tables.get(params, self._make_token_table)

    def _make_token_table(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        weights = torch.cat(
            [c.weight.permute(2, 0, 1).reshape(-1, c.in_channels) for c in self.convs]
        )
        rows = self.embedding.weight.shape[0]
        if rows * weights.shape[0] > _MAX_TABLE_ENTRIES:
            return None, weights
        return self.embedding.weight @ weights.T, weights  # [vocab, sum(widths) * filters]

    def _pooled_from_table(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The convolutions as lookups and shifted sums: a window's output is the sum, over
        its offsets, of that offset's filters applied to the token there, which the token
        table holds. The same numbers as `Conv1d` without its matrix products, which were
        most of the prediction time on the CPU."""
        table, weights = self._token_table()
        if table is not None:
            products = torch.nn.functional.embedding(ids, table)  # [B, L, columns]
        else:
            products = self.embedding(ids) @ weights.T
        length = ids.shape[1]
        pooled, column = [], 0
        for conv in self.convs:
            width, filters = conv.kernel_size[0], conv.out_channels
            windows = length - width + 1
            total = conv.bias
            for offset in range(width):
                block = products[:, offset : offset + windows, column : column + filters]
                total = total + block
                column += filters
            pooled.append(torch.relu(total).amax(dim=1))
        return pooled
