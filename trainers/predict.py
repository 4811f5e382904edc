"""Prediction on raw headlines from a checkpoint: tokenize, encode, classify."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainers.catalogue import model_spec
from trainers.checkpoint import checkpoint_vocab, load_checkpoint
from trainers.data.fork_encode import encode_all
from trainers.data.tokenizers import make_tokenizer
from trainers.data.vocab import Vocab
from trainers.models.by_length import logits_by_length
from trainers.models.frame import prediction_frame
from trainers.models.registry import build_model, config_from_dict


class Predictor:
    """Wraps a trained model with its vocabulary, tokenizer and label names.

    Batches of 256, with texts sorted by length (`logits_by_length`): on the CPU, smaller
    batches pay the per-call overhead more often and larger ones (512 and above) fall out of
    the caches, for the LSTM and TextCNN alike. The texts are encoded on two cores
    (`encode_all`).
    """

    def __init__(
        self,
        model: nn.Module,
        vocab: Vocab,
        tokenizer: str,
        pad_size: int,
        label_names: list[str],
        batch_size: int = 256,
    ) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.tokenize = make_tokenizer(tokenizer)  # type: ignore[arg-type]
        self.pad_size = pad_size
        self.label_names = label_names
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Predictor:
        return cls.from_dict(load_checkpoint(Path(path)))

    @classmethod
    def from_dict(cls, ckpt: dict) -> Predictor:
        config = config_from_dict(ckpt["model_name"], ckpt["model_config"])
        vocab = Vocab(checkpoint_vocab(ckpt))
        model = build_model(
            ckpt["model_name"], config, len(vocab), len(ckpt["label_names"]), random_init=False
        )
        model.load_state_dict(ckpt["state_dict"])
        return cls(model, vocab, ckpt["tokenizer"], ckpt["pad_size"], ckpt["label_names"])

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        ids = torch.from_numpy(encode_all(texts, self._encode, self.pad_size))
        return torch.softmax(logits_by_length(self.model, ids, self.batch_size), dim=1).numpy()

    def _encode(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenize(str(text)), self.pad_size)

    def predict_frame(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: label, label_id, probability, and prob_<label> for every class."""
        return prediction_frame(self.predict_proba(texts), self.label_names)


def load_predictor(checkpoint_path: str):
    """Entry point named in logged MLflow models (see tracker.logger.text_model): the
    checkpoint's model as an object with `predict_frame`: a model with its own runner (the
    linear baseline) loads itself, one the loop trained is wrapped in a `Predictor`."""
    ckpt = load_checkpoint(Path(checkpoint_path))
    spec = model_spec(ckpt["model_name"])
    if spec.runner:
        return spec.model_class().from_checkpoint(ckpt)
    return Predictor.from_dict(ckpt)
