"""Prediction on raw headlines from a checkpoint: tokenize, encode, classify."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainers.checkpoint import load_checkpoint
from trainers.data.tokenizers import make_tokenizer
from trainers.data.vocab import Vocab
from trainers.models.registry import build_model, config_from_dict


class Predictor:
    """Wraps a trained model with its vocabulary, tokenizer and label names."""

    def __init__(
        self,
        model: nn.Module,
        vocab: Vocab,
        tokenizer: str,
        pad_size: int,
        label_names: list[str],
        batch_size: int = 1024,
    ) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.tokenize = make_tokenizer(tokenizer)  # type: ignore[arg-type]
        self.pad_size = pad_size
        self.label_names = label_names
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Predictor:
        ckpt = load_checkpoint(Path(path))
        config = config_from_dict(ckpt["model_name"], ckpt["model_config"])
        vocab = Vocab(tuple(ckpt["vocab"]))
        model = build_model(ckpt["model_name"], config, len(vocab), len(ckpt["label_names"]))
        model.load_state_dict(ckpt["state_dict"])
        return cls(model, vocab, ckpt["tokenizer"], ckpt["pad_size"], ckpt["label_names"])

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        ids = torch.tensor([self.vocab.encode(self.tokenize(str(t)), self.pad_size) for t in texts])
        out = [
            torch.softmax(self.model(ids[i : i + self.batch_size]), dim=1)
            for i in range(0, len(ids), self.batch_size)
        ]
        return torch.cat(out).numpy()

    def predict_frame(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: label, label_id, probability, and prob_<label> for every class."""
        proba = self.predict_proba(texts)
        best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
        frame = pd.DataFrame(
            {
                "label": [self.label_names[i] for i in best],
                "label_id": best.astype("int64"),
                "probability": proba[np.arange(len(best)), best].astype("float64"),
            }
        )
        for i, name in enumerate(self.label_names):
            frame[f"prob_{name}"] = proba[:, i].astype("float64")
        return frame


def load_predictor(checkpoint_path: str) -> Predictor:
    """Entry point named in logged MLflow models (see tracker.logger.text_model)."""
    return Predictor.from_checkpoint(checkpoint_path)
