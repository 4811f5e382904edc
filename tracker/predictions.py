"""A run's test predictions, kept so that two runs can be compared example by example.

One accuracy per run cannot say whether two models differ by more than a seed's noise; the
examples each got right can (`tracker.dashboard.paired`). A run that ends with a test
evaluation logs, per test example, the predicted class and its probability, with the true
labels and the digest of the test split they belong to, as one small compressed `.npz`
artifact (`schema.TEST_PREDICTIONS_ARTIFACT`). Two runs are compared
only when their digests are equal. Only numpy here: training code (`trainers`) writes the file
through this module and the logger interface, and the dashboard reads it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracker.schema import TEST_PREDICTIONS_ARTIFACT

FORMAT = "newsdesk-predictions/1"


@dataclass(frozen=True)
class RunPredictions:
    """Per test example: the true label, the predicted class and its probability (NaN when
    the model gave none); `digest` names the test split."""

    digest: str
    labels: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.labels) == len(self.predicted) == len(self.probability)):
            raise ValueError(
                f"test predictions: {len(self.labels)} labels, {len(self.predicted)} "
                f"predictions and {len(self.probability)} probabilities"
            )
        if not self.digest:
            raise ValueError("test predictions need the digest of the test split")

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.predicted

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.labels) else float("nan")

    def save(self, path: Path) -> Path:
        np.savez_compressed(
            path,
            format=np.array(FORMAT),
            digest=np.array(self.digest),
            labels=self.labels.astype(np.int32),
            predicted=self.predicted.astype(np.int32),
            probability=self.probability.astype(np.float32),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> RunPredictions:
        """Read a file `save` wrote; anything else is a ValueError naming the file."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise ValueError(f"{path}: not a newsdesk predictions file")
                return cls(
                    str(data["digest"]),
                    data["labels"],
                    data["predicted"],
                    data["probability"],
                )
        except (OSError, KeyError, EOFError) as exc:
            raise ValueError(f"{path}: not a newsdesk predictions file ({exc})") from None


def log_test_predictions(
    logger: Any,
    *,
    labels: Any,
    predicted: Any,
    probability: Any | None = None,
    digest: str,
) -> None:
    """Log a run's test predictions through any newsdesk logger (`TrainingLogger`, the
    Lightning logger's `experiment`, the Hugging Face callback's logger): array-likes of one
    value per example; `digest` identifies the test split (the same split, the same digest)."""
    predicted = np.asarray(predicted)
    values = np.full(len(predicted), np.nan) if probability is None else np.asarray(probability)
    found = RunPredictions(digest, np.asarray(labels), predicted, values)
    with tempfile.TemporaryDirectory(prefix="newsdesk-predictions-") as tmp:
        name = Path(TEST_PREDICTIONS_ARTIFACT)
        path = found.save(Path(tmp) / name.name)
        logger.log_artifact(path, str(name.parent))
