"""Evaluation: loss and accuracy on a split, plus the per-class report for the test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import nn
from torch.nn import functional as F

from trainers.data.pipeline import Tensors


@dataclass
class Evaluation:
    loss: float
    acc: float
    predictions: np.ndarray
    labels: np.ndarray


@torch.no_grad()
def evaluate(model: nn.Module, data: Tensors, batch_size: int, device: torch.device) -> Evaluation:
    was_training = model.training
    model.eval()
    total_loss = 0.0
    preds = []
    for start in range(0, len(data), batch_size):
        ids = data.ids[start : start + batch_size].to(device, non_blocking=True)
        labels = data.labels[start : start + batch_size].to(device, non_blocking=True)
        logits = model(ids)
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        preds.append(logits.argmax(dim=1).cpu())
    model.train(was_training)
    predictions = torch.cat(preds).numpy()
    labels_np = data.labels.numpy()
    return Evaluation(
        loss=total_loss / len(data),
        acc=float((predictions == labels_np).mean()),
        predictions=predictions,
        labels=labels_np,
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
