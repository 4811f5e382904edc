"""One record per validation, for the dashboard's "classifier over time": the dev confusion
matrix and the most confident misclassified dev headlines, logged as a small JSON artifact
(`schema.EVALUATIONS_DIR/step_<global_step>.json`) through the logger, which writes it in the
background like every other artifact.

A record is built from the predictions the validation already made (a bincount and a partial
sort), so it adds little to the validation's time; a metric per matrix cell instead would put
a hundred one-point curves in front of the training curves in the MLflow UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tracker import schema
from trainers.evaluate import Evaluation

MISCLASSIFIED_KEPT = 20


def evaluation_file(step: int) -> str:
    return f"{schema.EVALUATIONS_DIR}/step_{step:09d}.json"


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    flat = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def evaluation_record(
    step: int,
    ev: Evaluation,
    texts: Sequence[str],
    label_names: Sequence[str],
    kept: int = MISCLASSIFIED_KEPT,
) -> dict[str, Any]:
    """The record of one validation at `step`: what the dashboard's slider steps through."""
    num_classes = len(label_names)
    wrong = np.flatnonzero(ev.predictions != ev.labels)
    if ev.probabilities is not None and len(wrong) > kept:
        confidence = ev.probabilities[wrong]
        wrong = wrong[np.argpartition(-confidence, kept - 1)[:kept]]
    if ev.probabilities is not None:
        wrong = wrong[np.argsort(-ev.probabilities[wrong], kind="stable")]
    wrong = wrong[:kept]
    return {
        "step": int(step),
        "val_loss": float(ev.loss),
        "val_acc": float(ev.acc),
        "examples": int(len(ev.labels)),
        "labels": list(label_names),
        "confusion": confusion_counts(ev.labels, ev.predictions, num_classes).tolist(),
        "misclassified": [
            {
                "index": int(i),
                "text": texts[i],
                "true": int(ev.labels[i]),
                "predicted": int(ev.predictions[i]),
                "probability": (
                    None if ev.probabilities is None else round(float(ev.probabilities[i]), 4)
                ),
            }
            for i in wrong
        ],
    }
