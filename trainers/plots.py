"""Figures logged with a run: the confusion matrix and the loss/accuracy curves.

Made as `Figure` objects without pyplot, so that importing this chooses no backend (a
notebook or a program with its own windows keeps theirs) and nothing has to be closed.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from tracker.fonts import use_cjk_font_if_available


def confusion_figure(matrix: np.ndarray, label_names: list[str], title: str) -> Figure:
    use_cjk_font_if_available()  # class names from class.txt are often Chinese
    size = max(4.0, 0.6 * len(label_names) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def curves_figure(
    train: list[tuple[int, float, float]], val: list[tuple[int, float, float]], title: str
) -> Figure:
    """train/val as (step, loss, acc) triples on one shared step axis."""
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    if train:
        steps, loss, acc = map(np.asarray, zip(*train, strict=True))
        ax_loss.plot(steps, loss, alpha=0.25, color="C0", label="train (per batch)")
        window = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(steps[window - 1 :], smooth, color="C0", label="train (smoothed)")
        ax_acc.plot(
            steps[window - 1 :],
            np.convolve(acc, np.ones(window) / window, "valid"),
            color="C0",
            label="train (smoothed)",
        )
    if val:
        steps, loss, acc = map(np.asarray, zip(*val, strict=True))
        ax_loss.plot(steps, loss, "o-", color="C1", label="validation")
        ax_acc.plot(steps, acc, "o-", color="C1", label="validation")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
