"""The frame every model predicts: one row per text, the same columns for every model."""

from __future__ import annotations

import numpy as np
import pandas as pd


def prediction_frame(proba: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    """What every model predicts: label, label_id, probability, prob_<label> per class."""
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    frame = pd.DataFrame(
        {
            "label": [label_names[i] for i in best],
            "label_id": best.astype("int64"),
            "probability": proba[np.arange(len(best)), best].astype("float64"),
        }
    )
    for i, name in enumerate(label_names):
        frame[f"prob_{name}"] = proba[:, i].astype("float64")
    return frame
