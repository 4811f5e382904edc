"""The linear baseline: TF-IDF features and a linear SVM (scikit-learn).

Character 1-2-grams, plus jieba words with `--tokenizer word` or `char+word`, weighted by
TF-IDF with sublinear term frequency, and `LinearSVC`: on THUCNews-45k it trains in seconds to an
accuracy the neural models have to beat, so it is the bar every neural model is compared with
(`--model all` trains it beside them; results in docs/benchmarks.md).

An SVM gives scores, not probabilities. The scores go through a softmax whose temperature is
fitted on the dev split (temperature scaling: one number, chosen to minimise the dev
log-loss), so `predict` and the served model return class probabilities like the neural models.
The ranking of classes, hence the accuracy, is the SVM's own.

The checkpoint holds plain values and tensors only (vocabulary terms, IDF weights,
coefficients), like the neural checkpoints: loading it never unpickles code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from trainers.checkpoint import checkpoint_dict
from trainers.data.tokenizers import make_tokenizer
from trainers.models.calibration import fit_temperature
from trainers.models.frame import prediction_frame
from trainers.models.settings import LinearConfig

if TYPE_CHECKING:  # scikit-learn and SciPy are slow to import: only a linear model needs them
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

NAME = "linear"


def _vectorizer(kind: str, config: LinearConfig, vocabulary=None) -> TfidfVectorizer:
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = {
        "sublinear_tf": config.sublinear_tf,
        "dtype": np.float32,
        "vocabulary": vocabulary,
    }
    if kind == "char":
        ngrams = (config.ngram_min, config.ngram_max)
        return TfidfVectorizer(analyzer="char", ngram_range=ngrams, min_df=config.min_df, **common)
    # Words: jieba's segmentation as the analyzer (unigrams; the characters cover the rest).
    return TfidfVectorizer(analyzer=make_tokenizer("word"), min_df=config.min_df, **common)


def _kinds(tokenizer: str) -> list[str]:
    """Character n-grams always; jieba words too for `word`, `char+word` and `ngrams`."""
    return ["char", "word"] if tokenizer in ("word", "char+word", "ngrams") else ["char"]


class LinearClassifier:
    """Raw text in, scores, probabilities and a prediction frame out."""

    def __init__(
        self,
        config: LinearConfig,
        tokenizer: str,
        vectorizers: list[TfidfVectorizer],
        coef: np.ndarray,
        intercept: np.ndarray,
        label_names: list[str],
        temperature: float = 1.0,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.vectorizers = vectorizers
        self.coef = coef.astype(np.float32)  # (num_classes, num_features)
        self.intercept = intercept.astype(np.float32)
        self.label_names = label_names
        self.temperature = temperature

    @property
    def num_features(self) -> int:
        return int(self.coef.shape[1])

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        blocks = [v.transform([str(t) for t in texts]) for v in self.vectorizers]
        return _stack(blocks)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.features(texts) @ self.coef.T) + self.intercept

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return _softmax(self.scores(texts) / self.temperature)

    def predict_frame(self, texts: Sequence[str]) -> pd.DataFrame:
        """The same columns as the neural models' `Predictor.predict_frame`."""
        return prediction_frame(self.predict_proba(texts), self.label_names)

    # ----- checkpoint -------------------------------------------------------------------------
    def checkpoint(self, extra: dict | None = None) -> dict:
        weights = {
            "features": [
                {
                    "kind": kind,
                    "terms": _terms(v),
                    "idf": torch.from_numpy(v.idf_.astype(np.float32)),
                }
                for kind, v in zip(_kinds(self.tokenizer), self.vectorizers, strict=True)
            ],
            "coef": torch.from_numpy(self.coef),
            "intercept": torch.from_numpy(self.intercept),
            "temperature": float(self.temperature),
        }
        return checkpoint_dict(NAME, self.config, self.label_names, self.tokenizer, weights, extra)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> LinearClassifier:
        config = LinearConfig(**ckpt["model_config"])
        vectorizers = []
        for block in ckpt["features"]:
            terms = block["terms"]
            vec = _vectorizer(block["kind"], config, {t: i for i, t in enumerate(terms)})
            vec.idf_ = block["idf"].numpy()
            vectorizers.append(vec)
        return cls(
            config,
            ckpt["tokenizer"],
            vectorizers,
            ckpt["coef"].numpy(),
            ckpt["intercept"].numpy(),
            list(ckpt["label_names"]),
            float(ckpt["temperature"]),
        )


def fit_linear(
    config: LinearConfig,
    tokenizer: str,
    train: tuple[Sequence[str], Sequence[int]],
    dev: tuple[Sequence[str], Sequence[int]],
    label_names: list[str],
) -> LinearClassifier:
    """Fit the features and the SVM on `train`, the softmax temperature on `dev`."""
    vectorizers = [_vectorizer(kind, config) for kind in _kinds(tokenizer)]
    texts = [str(t) for t in train[0]]
    blocks = [v.fit_transform(texts) for v in vectorizers]
    features = _stack(blocks)
    labels = np.asarray(train[1])
    from sklearn.svm import LinearSVC  # here, not at import (see the TYPE_CHECKING block)

    svm = LinearSVC(C=config.C, max_iter=config.max_iter, random_state=0)
    svm.fit(features, labels)
    coef, intercept = _full_coef(svm, len(label_names))
    model = LinearClassifier(config, tokenizer, vectorizers, coef, intercept, label_names)
    model.temperature = fit_temperature(model.scores(dev[0]), np.asarray(dev[1]))
    return model


def _stack(blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
    """The vectorizers' feature blocks side by side, as one CSR matrix."""
    if len(blocks) == 1:
        return blocks[0].tocsr()
    import scipy.sparse as sp

    return sp.hstack(blocks, format="csr")


def _full_coef(svm: LinearSVC, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One row per class of the corpus: a binary SVM has one row (the second class's
    score), and a class absent from the training split never wins."""
    classes = [int(c) for c in svm.classes_]
    coef = np.zeros((num_classes, svm.coef_.shape[1]), dtype=np.float32)
    intercept = np.full(num_classes, -1e4, dtype=np.float32)
    if len(classes) == 2:
        coef[classes[1]], intercept[classes[1]] = svm.coef_[0] / 2, svm.intercept_[0] / 2
        coef[classes[0]], intercept[classes[0]] = -svm.coef_[0] / 2, -svm.intercept_[0] / 2
        return coef, intercept
    for row, cls in enumerate(classes):
        coef[cls], intercept[cls] = svm.coef_[row], svm.intercept_[row]
    return coef, intercept


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def _terms(vectorizer: TfidfVectorizer) -> list[str]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[index] = term
    return terms
