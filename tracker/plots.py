"""The comparison figure: curves of several runs on the shared step axis, and test accuracy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def smooth(values: pd.Series, window: int) -> pd.Series:
    return values.rolling(window, min_periods=1).mean()


def run_label(runs: pd.DataFrame, run_id: str) -> str:
    row = runs.loc[runs["run_id"] == run_id].iloc[0]
    model = row.get("model")
    name = row.get("run_name")
    return f"{model} ({run_id[:6]})" if model else f"{name} ({run_id[:6]})"


def compare_figure(runs: pd.DataFrame, history: pd.DataFrame, metric: str = "test/acc") -> Figure:
    """Four panels: training loss (smoothed over the raw curve), validation loss, validation
    accuracy against the shared step axis, and a bar chart of `metric`; one colour per run."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    (ax_train, ax_vloss), (ax_vacc, ax_bar) = axes
    colours = {run_id: f"C{i % 10}" for i, run_id in enumerate(runs["run_id"])}
    for run_id, colour in colours.items():
        label = run_label(runs, run_id)
        mine = history[history["run_id"] == run_id]
        train = mine[mine["key"] == "train/loss"]
        if not train.empty:
            window = max(1, len(train) // 50)
            ax_train.plot(train["step"], train["value"], color=colour, alpha=0.15, linewidth=0.8)
            ax_train.plot(train["step"], smooth(train["value"], window), color=colour, label=label)
        for ax, key in ((ax_vloss, "val/loss"), (ax_vacc, "val/acc")):
            series = mine[mine["key"] == key]
            if not series.empty:
                ax.plot(
                    series["step"], series["value"], "o-", markersize=3, color=colour, label=label
                )
    for ax, title in (
        (ax_train, "training loss (smoothed; raw faint)"),
        (ax_vloss, "validation loss"),
        (ax_vacc, "validation accuracy"),
    ):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if metric in runs.columns:
        ranked = runs.dropna(subset=[metric])
        labels = [run_label(runs, r) for r in ranked["run_id"]]
        bars = ax_bar.bar(labels, ranked[metric], color=[colours[r] for r in ranked["run_id"]])
        ax_bar.bar_label(bars, fmt="%.4f", fontsize=8)
        low = float(ranked[metric].min()) if len(ranked) else 0.0
        ax_bar.set_ylim(
            max(0.0, low - 0.05),
            min(1.0, float(ranked[metric].max()) + 0.02)
            if len(ranked) and ranked[metric].max() <= 1
            else None,
        )
        ax_bar.tick_params(axis="x", labelrotation=15)
    ax_bar.set_title(metric)
    fig.tight_layout()
    return fig
