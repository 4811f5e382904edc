"""Evaluation: loss and accuracy on a split, plus the per-class report for the test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import nn
from torch.nn import functional as F

from trainers.data.pipeline import Tensors
from trainers.models.by_length import logits_by_length


@dataclass
class Evaluation:
    loss: float
    acc: float
    predictions: np.ndarray
    labels: np.ndarray
    # The predicted class's probability per example (kept with the run's test predictions).
    probabilities: np.ndarray | None = None


@torch.no_grad()
def evaluate(model: nn.Module, data: Tensors, batch_size: int, device: torch.device) -> Evaluation:
    was_training = model.training
    model.eval()
    # Batches of similar length, cut to their longest text (`logits_by_length`): the same
    # numbers as padded batches, without the work on padding.
    logits = logits_by_length(model, data.ids, batch_size, device)
    model.train(was_training)
    total_loss = F.cross_entropy(logits, data.labels, reduction="sum").item()
    top = F.softmax(logits.float(), dim=1).max(dim=1)
    predictions = top.indices.numpy()
    labels_np = data.labels.numpy()
    return Evaluation(
        loss=total_loss / len(data),
        acc=float((predictions == labels_np).mean()),
        predictions=predictions,
        labels=labels_np,
        probabilities=top.values.numpy(),
    )


def classification_report(ev: Evaluation, label_names: list[str]) -> dict:
    """Per-class precision, recall, F1 and support, plus macro averages (JSON-ready)."""
    ids = list(range(len(label_names)))
    p, r, f, s = precision_recall_fscore_support(
        ev.labels, ev.predictions, labels=ids, zero_division=0
    )
    return {
        "classes": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(label_names)
        },
        "accuracy": ev.acc,
        "macro_f1": macro_f1(ev, len(label_names)),
    }


def macro_f1(ev: Evaluation, num_classes: int) -> float:
    return float(
        f1_score(
            ev.labels,
            ev.predictions,
            labels=list(range(num_classes)),
            average="macro",
            zero_division=0,
        )
    )


def confusion(ev: Evaluation, num_classes: int) -> np.ndarray:
    return confusion_matrix(ev.labels, ev.predictions, labels=list(range(num_classes)))
