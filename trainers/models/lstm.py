"""A bidirectional LSTM classifier, max-pooled over time or from the last states, with a bag
of hashed n-grams beside it (`bag_dim`; 0 leaves the plain LSTM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainers.models.derived import inferring
from trainers.models.embedding import token_embedding
from trainers.models.folded_lstm import FoldedBiLSTM, foldable
from trainers.models.ngram_bag import BagSettings, bag_and_classifier, classify


@dataclass(frozen=True)
class LSTMConfig(BagSettings):
    embed_dim: int = 200
    # 64: as accurate as 128 (the bag carries most of it), faster to train and to predict.
    hidden_size: int = 64
    # One layer: with the bag beside it, a second layer adds little for twice the time.
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3  # between LSTM layers and before the classifier
    embed_dropout: float = 0.2
    pooling: Literal["max", "last"] = "max"
    # The n-gram bag's width (0: none): it lifts the LSTM to the linear model's level in fewer
    # epochs, and keeps it there on small corpora.
    bag_dim: int = 100
    # Hash buckets for the n-grams; 0: one per distinct n-gram of the training texts, at most
    # 200,000 (`derived_buckets`), logged as the run's param. THUCNews-45k gets 200,000.
    bag_buckets: int = 0
    # The bag's rows weighted by their idf over the training texts (`idf_weights`).
    bag_idf: bool = True
    # The share of training examples whose LSTM features are dropped, leaving the bag alone
    # (`drop_branch`): on a small corpus the LSTM otherwise memorises the texts before the bag
    # learns, and ends far below the linear model.
    branch_dropout: float = 0.5
    # The token table updated sparsely (see `token_embedding`): about as accurate as Adam's
    # dense update of every row, in far less time on headlines.
    sparse_embedding: bool = True


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
