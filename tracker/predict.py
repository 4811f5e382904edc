"""Predicting with a registered (or any) MLflow model on raw headlines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from tracker.registry import CHAMPION, default_model_name
from tracker.store import resolve_store

PROB_PREFIX = "prob_"


def default_model_uri(experiment: str) -> str:
    return f"models:/{default_model_name(experiment)}@{CHAMPION}"


def load_model(model_uri: str, tracking_uri: str | None = None):
    """Load a pyfunc model; a URI that does not resolve is a ValueError naming it."""
    store = resolve_store(tracking_uri).tracking_uri
    try:
        with _use_tracking_uri(store):
            return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise ValueError(f"model URI {model_uri!r} does not resolve: {first}") from None


def read_headlines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: bytes that are not UTF-8 at offset {exc.start}") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"{path}: no headlines (the file is empty)")
    return texts


def predict(model, texts: Sequence[str], top_k: int = 1) -> pd.DataFrame:
    """text, label, probability, and `top_k` as 'label:p; label:p' from the model's output."""
    if top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {top_k}")
    out = model.predict(pd.DataFrame({"text": list(texts)}))
    prob_cols = [c for c in out.columns if c.startswith(PROB_PREFIX)]
    frame = pd.DataFrame(
        {"text": list(texts), "label": out["label"], "probability": out["probability"]}
    )
    if prob_cols:
        probs = out[prob_cols].to_numpy()
        names = [c.removeprefix(PROB_PREFIX) for c in prob_cols]
        order = (-probs).argsort(axis=1)[:, :top_k]
        frame["top_k"] = [
            "; ".join(f"{names[j]}:{probs[i, j]:.4f}" for j in row) for i, row in enumerate(order)
        ]
    return frame
