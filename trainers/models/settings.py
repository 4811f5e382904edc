"""The models' settings (`--set model.KEY=VALUE`): one frozen dataclass per model.

Kept apart from the models, with no torch import, so that the command line can list every
setting (`newsdesk train --help`) and check a `--set` (with a suggestion for a typo) before it
loads the training stack. A checkpoint stores a config as a plain dict (`dataclasses.asdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

BagNorm = Literal["mean", "l2"]


class BagSettings:
    """The settings of the bag beside a sequence model (TextCNN, LSTM), shared by their
    configs. Its fields are declared in each config (dataclass fields need their own
    comments there); the absence table is shared: a checkpoint written before a setting
    existed meant the plain model."""

    ABSENT: ClassVar[dict[str, object]] = {
        "bag_dim": 0,
        "branch_dropout": 0.0,
        "sparse_embedding": False,
        "bag_idf": False,
    }


@dataclass(frozen=True)
class LinearConfig:
    ngram_min: int = 1
    ngram_max: int = 2
    min_df: int = 1
    sublinear_tf: bool = True
    C: float = 1.0  # noqa: N815 - scikit-learn's name for the inverse regularisation
    max_iter: int = 2000

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError("model.ngram_min must be >= 1 and <= model.ngram_max")
        if self.min_df < 1 or self.max_iter < 1:
            raise ValueError("model.min_df and model.max_iter must be >= 1")
        if not (math.isfinite(self.C) and self.C > 0):
            raise ValueError(f"model.C must be a positive finite number, got {self.C}")


@dataclass(frozen=True)
class FastTextConfig:
    # 100 dimensions: as accurate as 200 at half the cost. Pretrained vectors need
    # `model.embed_dim` set to theirs.
    embed_dim: int = 100
    # Hash buckets for the n-grams; 0: one per distinct n-gram of the training texts, at most
    # 200,000 (`derived_buckets`), logged as the run's param. THUCNews-45k gets 200,000.
    buckets: int = 0
    # 1 = unigrams only, 2 = +bigrams, 3 = +trigrams (bigrams measured best); 0: 1 for the
    # `ngrams` tokenizer (its tokens are n-grams already), else 2 (`with_derived_ngrams`).
    ngrams: int = 0
    # 0: the averaged embedding goes straight to the classifier, as in fastText itself; a
    # hidden layer overfits within two epochs.
    hidden_size: int = 0
    # No dropout and a small initial table: on the `ngrams` features with the hinge, either
    # dropout or larger initial rows cost accuracy.
    dropout: float = 0.0
    init_std: float = 0.03
    # The bag averaged with each row weighted by its idf over the training texts
    # (`idf_weights`): rare, topical n-grams count for more than frequent ones.
    idf: bool = True
    # "l2": the idf-weighted sum over the weights' L2 norm, as TF-IDF; "mean": their mean.
    bag_norm: BagNorm = "l2"
    # "hinge": one-vs-rest hinge, a linear SVM's loss, above cross-entropy on the `ngrams`
    # features; its scores are calibrated after training (`calibrate`). "cross_entropy": the
    # softmax loss, probabilities as trained. (Measurements: benchmarks/NOTES-models.md.)
    loss: Literal["cross_entropy", "hinge"] = "hinge"

    # A checkpoint written before a setting existed meant the plain model.
    ABSENT: ClassVar[dict[str, object]] = {
        "idf": False,
        "bag_norm": "mean",
        "loss": "cross_entropy",
        "ngrams": 2,
    }

    def __post_init__(self) -> None:
        if self.bag_norm not in ("mean", "l2"):
            raise ValueError(f"model.bag_norm must be 'mean' or 'l2', got {self.bag_norm!r}")
        if self.loss not in ("cross_entropy", "hinge"):
            raise ValueError(f"model.loss must be 'cross_entropy' or 'hinge', got {self.loss!r}")
        if not (self.init_std >= 0 and 0 <= self.dropout < 1):
            raise ValueError("model.init_std must be >= 0 and model.dropout in [0, 1)")
        if not 0 <= self.ngrams <= 3:
            raise ValueError(f"model.ngrams must be 0 (derived), 1, 2 or 3, got {self.ngrams}")


@dataclass(frozen=True)
class TextCNNConfig(BagSettings):
    embed_dim: int = 200
    filter_sizes: tuple[int, ...] = (2, 3, 4)
    # 128: with the bag beside them, more filters add little accuracy for much more time.
    num_filters: int = 128
    dropout: float = 0.5
    # The n-gram bag beside the convolutions (0: none), as in the LSTM: more accurate in fewer
    # epochs.
    bag_dim: int = 100
    # Hash buckets for the n-grams; 0: one per distinct n-gram of the training texts, at most
    # 200,000 (`derived_buckets`), logged as the run's param. THUCNews-45k gets 200,000.
    bag_buckets: int = 0
    # The bag's rows weighted by their idf over the training texts (`idf_weights`).
    bag_idf: bool = True
    # The share of training examples whose convolution features are dropped, so that the bag
    # learns to classify alone (`drop_branch`): it helps small corpora and costs nothing on
    # large ones.
    branch_dropout: float = 0.5
    # The token table updated sparsely (see `token_embedding`): a much shorter step with tens
    # of thousands of characters and words.
    sparse_embedding: bool = True


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
