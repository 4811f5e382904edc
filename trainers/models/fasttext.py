"""FastText (Joulin et al., "Bag of Tricks"): averaged token and hashed n-gram embeddings.

Unigrams, bigrams and trigrams share one sparse `EmbeddingBag` table (vocabulary rows first,
then hash buckets), averaged in one call (`trainers.models.ngram_bag`).

By default it reads the linear model's features (`--tokenizer ngrams`: characters, character
bigrams and jieba's words), weights them as TF-IDF does (idf, L2-normalised) and trains with
the one-vs-rest hinge loss of a linear SVM. Its scores are margins, so a softmax temperature
fitted on the dev split (`calibrate`, before each validation and after training) turns them
into class probabilities, as the linear model does with its SVM's scores.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainers.models.by_length import logits_by_length
from trainers.models.calibration import fit_temperature
from trainers.models.derived import inferring
from trainers.models.ngram_bag import (
    FoldedTable,
    bag_mean,
    bag_table,
    ngram_ids,
    unit_weights,
)
from trainers.models.settings import FastTextConfig


class FastText(nn.Module):
    row_weights: torch.Tensor | None

    def __init__(
        self,
        config: FastTextConfig,
        vocab_size: int,
        num_classes: int,
        pretrained: torch.Tensor | None = None,
        random_init: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.embedding = bag_table(
            vocab_size,
            config.embed_dim,
            config.buckets,
            config.ngrams,
            random_init,
            std=config.init_std,
        )
        with torch.no_grad():
            if pretrained is not None:
                if pretrained.shape != (vocab_size, config.embed_dim):
                    raise ValueError(
                        f"pretrained vectors are {tuple(pretrained.shape)}, model needs "
                        f"({vocab_size}, {config.embed_dim}); set model.embed_dim to match"
                    )
                self.embedding.weight[:vocab_size] = pretrained
        rows = self.embedding.weight.shape[0]
        self.register_buffer("row_weights", unit_weights(rows) if config.idf else None)
        # The softmax temperature of the hinge's margins, fitted by `calibrate`.
        hinge = config.loss == "hinge"
        self.register_buffer("temperature", torch.ones(()) if hinge else None)
        self.dropout = nn.Dropout(config.dropout)
        self.fc1 = (
            nn.Linear(config.embed_dim, config.hidden_size) if config.hidden_size > 0 else None
        )
        self.fc2 = nn.Linear(config.hidden_size or config.embed_dim, num_classes)
        self._folded = FoldedTable()

    def bags(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, L] token ids -> [B, n] rows of the table (tokens, then n-gram buckets)."""
        return ngram_ids(ids, self.vocab_size, self.config.buckets, self.config.ngrams)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        bags = self.bags(ids)
        if self.fc1 is None and inferring(self):
            # Inference without a hidden layer: the table folded into the classifier.
            table, fc = self.embedding.weight, self.fc2
            norm = self.config.bag_norm
            scores = self._folded.scores(table, fc.weight, bags, self.row_weights, norm)
            return self._scaled(scores + fc.bias)
        features = bag_mean(
            self.embedding.weight, bags, self.row_weights, sparse=True, norm=self.config.bag_norm
        )
        features = self.dropout(features)
        if self.fc1 is not None:
            features = self.dropout(torch.relu(self.fc1(features)))
        return self._scaled(self.fc2(features))

    def _scaled(self, scores: torch.Tensor) -> torch.Tensor:
        """Evaluation and prediction: the margins over the fitted temperature. Training: the
        margins themselves, which the hinge loss needs whatever was fitted meanwhile."""
        if self.temperature is None or self.training:
            return scores
        return scores / self.temperature

    def training_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss the training loop minimises: cross-entropy, or the one-vs-rest hinge
        `sum_c max(0, 1 - t_c * s_c)` with t_c = +1 for the label and -1 for the others."""
        if self.config.loss == "cross_entropy":
            return F.cross_entropy(logits, labels)
        signs = F.one_hot(labels, logits.shape[1]).to(logits.dtype) * 2 - 1
        return F.relu(1 - signs * logits).sum(dim=1).mean()

    @torch.no_grad()
    def calibrate(
        self, ids: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device
    ) -> None:
        """Fit the softmax temperature on the dev split (`[N, L]` ids and their labels): the
        one number that minimises the log-loss of its scores, taken at temperature 1. The
        hinge's margins become probabilities, their ranking (hence the accuracy) unchanged.
        Cross-entropy needs none."""
        if self.temperature is None:
            return
        was_training = self.training
        self.eval()
        self.temperature.fill_(1.0)
        scores = logits_by_length(self, ids, batch_size, device).double().cpu().numpy()
        self.train(was_training)
        self.temperature.fill_(fit_temperature(scores, labels.numpy().astype(np.int64)))
