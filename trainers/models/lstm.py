"""A bidirectional LSTM classifier, max-pooled over time or from the last states, with a bag
of hashed n-grams beside it (`bag_dim`; 0 leaves the plain LSTM)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainers.models.derived import inferring
from trainers.models.embedding import token_embedding
from trainers.models.folded_lstm import FoldedBiLSTM, foldable
from trainers.models.ngram_bag import bag_and_classifier, classify
from trainers.models.settings import LSTMConfig


class LSTMClassifier(nn.Module):
    def __init__(
        self,
        config: LSTMConfig,
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
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        directions = 2 if config.bidirectional else 1
        self.dropout = nn.Dropout(config.dropout)
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        self.bag, self.fc = bag_and_classifier(
            config, vocab_size, config.hidden_size * directions, num_classes, random_init
        )
        # Inference with the input projection folded into a table (`FoldedBiLSTM`), for the
        # layout it computes: one bidirectional layer, max-pooled.
        self._folded = FoldedBiLSTM() if foldable(self.lstm) and config.pooling == "max" else None

    @property
    def trailing_pad_needed(self) -> int:
        """No padding is needed after a batch's longest text: padding is packed away and
        masked out of the pooling, so prediction may trim each batch to its longest text."""
        return 0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._folded is not None and inferring(self):
            features = self._folded.max_pooled(self.lstm, self.embedding.weight, ids)
            return classify(self, features, ids)
        # Packed sequences skip the padding: most headlines are shorter than the positions
        # kept, and the recurrence over padding is work a CPU step would pay for nothing.
        lengths = (ids != 0).sum(dim=1).clamp(min=1).cpu()
        embedded = self.embed_dropout(self.embedding(ids))
        if int(lengths.min()) == ids.shape[1]:
            # No padding in the batch (prediction groups texts of one length): the plain
            # call, which takes the CPU's fused LSTM kernel; packing would only add work.
            out, (h_n, _) = self.lstm(embedded)
        else:
            packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
            out, (h_n, _) = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        if self.config.pooling == "last":
            features = torch.cat([h_n[-2], h_n[-1]], 1) if self.config.bidirectional else h_n[-1]
        else:
            pad = (ids == 0).unsqueeze(-1)
            features = out.masked_fill(pad, float("-inf")).amax(dim=1)
            features = torch.nan_to_num(features, neginf=0.0)  # all-pad rows
        return classify(self, features, ids)
