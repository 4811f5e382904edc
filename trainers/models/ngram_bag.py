"""A bag of hashed n-grams: the averaged embeddings of a text's tokens and of its adjacent
pairs (and triples), the features fastText classifies with.

FastText is this bag and a linear layer. The LSTM reads the same bag beside its own states
(`LSTMConfig.bag_dim`): on headlines the bag learns the topic words in a few hundred steps,
which the recurrent part alone needs several epochs for, and on small corpora it keeps the
LSTM near the linear baseline.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from trainers.models.derived import Derived, inferring
from trainers.models.settings import BagNorm, BagSettings  # noqa: F401 - BagSettings: re-exported

_P1, _P2 = 14_918_087, 18_408_749  # primes for n-gram hashing, as in fastText's reference port


def ngram_ids(ids: torch.Tensor, vocab_size: int, buckets: int, ngrams: int) -> torch.Tensor:
    """[B, L] token ids -> [B, L + (L-1) + (L-2)] ids into a table of `vocab_size` token rows
    followed by `buckets` hashed n-gram rows (0 = padding, ignored by the bag)."""
    parts = [ids]
    pad = ids == 0
    if ngrams >= 2:
        bi = (ids[:, :-1] * _P1 + ids[:, 1:]) % buckets + vocab_size
        parts.append(bi.masked_fill(pad[:, 1:], 0))
    if ngrams >= 3:
        tri = (ids[:, :-2] * _P2 + ids[:, 1:-1] * _P1 + ids[:, 2:]) % buckets + vocab_size
        parts.append(tri.masked_fill(pad[:, 2:], 0))
    return torch.cat(parts, dim=1)


# The hash table's size when a config leaves it to the corpus (`buckets` / `bag_buckets` 0).
MAX_DERIVED_BUCKETS = 200_000
_BUCKET_ROUNDING = 10_000


def derived_buckets(ids: torch.Tensor, ngrams: int = 2) -> int:
    """One bucket per distinct n-gram (2 to `ngrams`) of the training texts' `[N, L]` token
    ids, rounded up to a multiple of 10,000, at most `MAX_DERIVED_BUCKETS`.

    Why: a fixed 200,000 rows made every bag model on a small corpus a checkpoint of mostly
    rows no text hashes to, written with their optimizer moments at every resume checkpoint
    and uploaded with the model. THUCNews-45k has more distinct bigrams than the cap, so it
    keeps the 200,000 rows its tuning used (benchmarks/NOTES-models.md)."""
    # The table's own hashing with no modulo (and an offset of 1), so that every n-gram keeps
    # its own id; the unigram columns are dropped. Unigrams only or no texts: 10,000.
    hashed = ngram_ids(ids, 1, 1 << 62, ngrams)[:, ids.shape[1] :]
    distinct = int(torch.unique(hashed[hashed != 0]).numel())
    rounded = -(-max(distinct, 1) // _BUCKET_ROUNDING) * _BUCKET_ROUNDING
    return min(MAX_DERIVED_BUCKETS, rounded)


# Tokenizers whose tokens are n-grams already (`NgramTokenizer`): a bag hashes no pairs of them.
NGRAM_TOKENIZERS = ("ngrams",)


def with_derived_ngrams(config, tokenizer: str | None):
    """`config` with `ngrams` 0 (left to the data) fixed: 1 for a tokenizer whose tokens are
    n-grams already, else 2 (tokens and their hashed bigrams); with no tokenizer known (a model
    built outside a training run), 2. An explicit value is returned unchanged."""
    if getattr(config, "ngrams", None) != 0:
        return config
    return dataclasses.replace(config, ngrams=1 if tokenizer in NGRAM_TOKENIZERS else 2)


def with_derived_buckets(config, ids: torch.Tensor | None):
    """`config` with its bucket count derived from the training ids (`derived_buckets`) where
    it is 0, or `MAX_DERIVED_BUCKETS` when no ids are given (a model built outside a training
    run); an explicit count, a unigram model's (no bucket rows) or a config without a bag is
    returned unchanged."""
    # An order left to the data (0) counts as bigrams here; unigrams alone need no buckets.
    for name, ngrams in (("buckets", getattr(config, "ngrams", 2) or 2), ("bag_buckets", 2)):
        if getattr(config, name, None) == 0 and ngrams > 1:
            count = MAX_DERIVED_BUCKETS if ids is None else derived_buckets(ids, ngrams)
            return dataclasses.replace(config, **{name: count})
    return config


def bag_table(
    vocab_size: int,
    dim: int,
    buckets: int,
    ngrams: int,
    random_init: bool = True,
    std: float = 0.1,
) -> nn.EmbeddingBag:
    """The shared table, `sparse=True`: a step updates only the rows its batch touched (two
    dense tables, as in the reference, made every step update every row).

    `random_init=False` leaves it uninitialised, for weights loaded right after: drawing
    millions of random numbers only to overwrite them was a visible part of loading a model
    to predict."""
    rows = vocab_size + (buckets if ngrams > 1 else 0)
    if not random_init:
        empty = torch.empty(rows, dim)
        return nn.EmbeddingBag(rows, dim, mode="mean", sparse=True, padding_idx=0, _weight=empty)
    table = nn.EmbeddingBag(rows, dim, mode="mean", sparse=True, padding_idx=0)
    nn.init.normal_(table.weight, std=std)
    with torch.no_grad():
        table.weight[0].zero_()
    return table


def idf_weights(bags: torch.Tensor, rows: int, chunk: int = 100_000) -> torch.Tensor:
    """Each table row's inverse document frequency over the training texts' bags (`[N, n]`
    row ids), `ln((1 + N) / (1 + df)) + 1` as scikit-learn's smoothed idf.

    Why: averaged with these weights, FastText's bag was more accurate on THUCNews-45k than
    with the plain mean over three seeds (benchmarks/NOTES-models.md); a rare topic word
    counts for more than a frequent particle, as in the TF-IDF baseline. Rows no
    training text has (and the padding row) weigh 0: their vectors never received a
    gradient, so they would only add noise."""
    n = bags.shape[0]
    df = torch.zeros(rows, dtype=torch.long)
    for start in range(0, n, chunk):  # bounds the memory of the unique over (text, row)
        part = bags[start : start + chunk]
        text = torch.arange(part.shape[0]).unsqueeze(1)
        pairs = torch.unique(text * rows + part)
        df += torch.bincount(pairs % rows, minlength=rows)
    weights = torch.log((1.0 + n) / (1.0 + df.float())) + 1.0
    weights[df == 0] = 0.0
    weights[0] = 0.0
    return weights


def unit_weights(rows: int) -> torch.Tensor:
    """Weights that make the weighted bag the plain mean (padding row 0 excluded), until
    `idf_weights` replace them."""
    weights = torch.ones(rows)
    weights[0] = 0.0
    return weights


def bag_mean(
    table: torch.Tensor,
    bags: torch.Tensor,
    row_weights: torch.Tensor | None,
    sparse: bool = False,
    norm: BagNorm = "mean",
) -> torch.Tensor:
    """[B, n] row ids -> [B, dim]: the mean of their rows of `table`, weighted by
    `row_weights` when given (the padding row 0 never counts); an all-padding bag is 0.

    `norm="l2"`: the weighted sum divided by the weights' L2 norm instead of their sum, the
    TF-IDF vector that scikit-learn's `TfidfVectorizer` gives the linear model (a long text
    counts for more than the mean of its rows)."""
    if row_weights is None and norm == "mean":
        return nn.functional.embedding_bag(bags, table, mode="mean", padding_idx=0, sparse=sparse)
    weights = (bags != 0).to(table.dtype) if row_weights is None else row_weights[bags]
    total = nn.functional.embedding_bag(
        bags, table, mode="sum", per_sample_weights=weights, padding_idx=0, sparse=sparse
    )
    scale = (
        weights.sum(dim=1, keepdim=True) if norm == "mean" else weights.norm(dim=1, keepdim=True)
    )
    return total / scale.clamp(min=1e-12)


def fit_bag_weights(model: nn.Module, train_ids: torch.Tensor) -> None:
    """Give every weighted bag in `model` (a module with a `row_weights` buffer and a
    `bags(ids)` method: `NgramBag`, `FastText`) the idf of the training texts (`[N, L]` token
    ids). Training calls it once after building the model; the weights are a buffer, so a
    checkpoint carries them to prediction and to a resumed run."""
    for module in model.modules():
        weights = getattr(module, "row_weights", None)
        if weights is not None:
            weights.copy_(idf_weights(module.bags(train_ids), weights.numel()))


class FoldedTable:
    """Inference only: a bag table folded into the classifier columns that read it.

    The classifier is linear in the bag's mean, so `W @ mean(rows) = mean(rows @ W.T)`: a
    table of [rows, classes] instead of [rows, dim] gives the same scores from a gather
    `dim / classes` times narrower (the bag was a large part of TextCNN's prediction time on
    the CPU). Remade
    when either tensor changed (an evaluation during training)."""

    def __init__(self) -> None:
        self._folded: Derived[torch.Tensor] = Derived()

    def scores(
        self,
        table: torch.Tensor,
        weight: torch.Tensor,
        bags: torch.Tensor,
        row_weights: torch.Tensor | None = None,
        norm: BagNorm = "mean",
    ) -> torch.Tensor:
        folded = self._folded.get((table, weight), lambda: table @ weight.T)
        return bag_mean(folded, bags, row_weights, norm=norm)


class NgramBag(nn.Module):
    """Token ids in, the [B, dim] averaged embedding of their unigrams and bigrams out,
    idf-weighted when `idf` (see `idf_weights`)."""

    row_weights: torch.Tensor | None

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        buckets: int = 200_000,
        random_init: bool = True,
        idf: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size, self.buckets = vocab_size, buckets
        self.table = bag_table(vocab_size, dim, buckets, ngrams=2, random_init=random_init)
        rows = self.table.weight.shape[0]
        self.register_buffer("row_weights", unit_weights(rows) if idf else None)
        self._folded = FoldedTable()

    def bags(self, ids: torch.Tensor) -> torch.Tensor:
        return ngram_ids(ids, self.vocab_size, self.buckets, ngrams=2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return bag_mean(self.table.weight, self.bags(ids), self.row_weights, sparse=True)

    def class_scores(self, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Inference: `self(ids) @ weight.T` through the folded table."""
        return self._folded.scores(self.table.weight, weight, self.bags(ids), self.row_weights)


def bag_and_classifier(
    config, vocab_size: int, features: int, num_classes: int, random_init: bool = True
) -> tuple[NgramBag | None, nn.Linear]:
    """The bag a `BagSettings` config asks for (None when `bag_dim` is 0) and the classifier
    over [`features` sequence features, bag], as `classify` reads them."""
    bag = (
        NgramBag(vocab_size, config.bag_dim, config.bag_buckets, random_init, config.bag_idf)
        if config.bag_dim
        else None
    )
    return bag, nn.Linear(features + config.bag_dim, num_classes)


def classify(model: nn.Module, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The classifier (`model.fc` after `model.dropout`) over [sequence features, bag]: in
    training with branch dropout; in inference (no gradient) with the bag's part folded
    (`FoldedTable`). Without a bag (`model.bag` None), the features alone."""
    fc, dropout, bag = model.fc, model.dropout, model.bag
    if bag is None:
        return fc(dropout(features))
    if not inferring(model):
        features = drop_branch(features, model.config.branch_dropout, model.training)
        return fc(dropout(torch.cat([features, bag(ids)], dim=1)))
    width = features.shape[1]
    own = nn.functional.linear(features, fc.weight[:, :width], fc.bias)
    return own + bag.class_scores(ids, fc.weight[:, width:])


def drop_branch(features: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero a whole branch's features (the LSTM's or the convolutions') for a random share
    `p` of the examples while training, scaled like dropout. The bag beside it must then
    classify those examples alone: on a small corpus the sequence branch memorises the
    training texts within a few hundred steps, after which the bag, which generalises
    better there, no longer receives a gradient."""
    if not training or p <= 0:
        return features
    keep = torch.rand(features.shape[0], 1, device=features.device) >= p
    return features * keep / (1 - p)
