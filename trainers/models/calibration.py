"""Temperature scaling: one number that turns a model's scores into class probabilities.

Margins (an SVM's, or a network trained with a hinge loss) rank the classes but are no
probabilities; `softmax(scores / T)`, with `T` chosen to minimise the log-loss on held-out
data, is (Guo et al., "On Calibration of Modern Neural Networks", 2017). The ranking, hence
the accuracy, does not change.
"""

from __future__ import annotations

import numpy as np

# Temperatures tried (log-spaced; SVM and hinge margins are O(1)).
TEMPERATURES = np.geomspace(0.02, 5.0, 80)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in `TEMPERATURES` with the lowest log-loss of `scores` against the
    integer `labels`; 1.0 with no labels."""
    if len(labels) == 0:
        return 1.0
    losses = [log_loss(scores / t, labels) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of softmax(logits) against integer labels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(labels)), labels]))
