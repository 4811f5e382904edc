"""The comparison figure: curves of several runs on the shared step axis, and test accuracy.

Figures are made as `matplotlib.figure.Figure` objects, not through pyplot: no backend is
chosen or changed (a notebook keeps its inline backend and shows a returned figure, a program
that imports this keeps `plt.show()`), and nothing has to be closed.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from tracker.fonts import use_cjk_font_if_available
from tracker.schema import DEFAULT_RANK_METRIC, TRAIN_LOSS, VAL_ACC, VAL_LOSS


def smooth(values: pd.Series, window: int) -> pd.Series:
    return values.rolling(window, min_periods=1).mean()


def run_label(runs: pd.DataFrame, run_id: str) -> str:
    row = runs.loc[runs["run_id"] == run_id].iloc[0]
    model = row.get("model")
    name = row.get("run_name")
    return f"{model} ({run_id[:6]})" if model else f"{name} ({run_id[:6]})"


def compare_figure(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str = DEFAULT_RANK_METRIC,
    per_class: pd.DataFrame | None = None,
) -> Figure:
    """Training loss (smoothed over the faint raw curve), validation loss and validation
    accuracy against the shared step axis, a bar chart of `metric`, and, given `per_class`,
    test F1 per class with the label names of class.txt; one colour per run."""
    use_cjk_font_if_available()
    with_classes = per_class is not None and not per_class.empty
    fig = Figure(figsize=(13, 12 if with_classes else 8))
    grid = fig.add_gridspec(3 if with_classes else 2, 2)
    ax_train, ax_vloss = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_vacc, ax_bar = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    colours = {run_id: f"C{i % 10}" for i, run_id in enumerate(runs["run_id"])}
    for run_id, colour in colours.items():
        label = run_label(runs, run_id)
        mine = history[history["run_id"] == run_id]
        train = mine[mine["key"] == TRAIN_LOSS]
        if not train.empty:
            window = max(1, len(train) // 50)
            ax_train.plot(train["step"], train["value"], color=colour, alpha=0.15, linewidth=0.8)
            ax_train.plot(train["step"], smooth(train["value"], window), color=colour, label=label)
        for ax, key in ((ax_vloss, VAL_LOSS), (ax_vacc, VAL_ACC)):
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
        _metric_bars(ax_bar, runs, metric, colours)
    ax_bar.set_title(metric)
    if with_classes:
        _per_class_panel(fig.add_subplot(grid[2, :]), runs, per_class, colours)
    fig.tight_layout()
    return fig


def _metric_bars(ax, runs: pd.DataFrame, metric: str, colours: dict) -> None:
    """One bar per run, except that the runs of a seed group (`--seeds N`) are one bar: their
    mean, with the standard deviation as an error bar and each run's value as a dot."""
    ranked = runs.dropna(subset=[metric])
    grouped = ranked["seed_group"] if "seed_group" in ranked.columns else None
    labels, values, errors, colour_of, dots = [], [], [], [], []
    seen: set[str] = set()
    for run_id, value, group in zip(
        ranked["run_id"],
        ranked[metric],
        grouped if grouped is not None else [None] * len(ranked),
        strict=True,
    ):
        if isinstance(group, str):
            if group in seen:
                continue
            seen.add(group)
            members = ranked[ranked["seed_group"] == group]
            model = members["model"].iloc[0] if "model" in members else group
            labels.append(f"{model} ×{len(members)}")
            values.append(float(members[metric].mean()))
            errors.append(float(members[metric].std(ddof=1)) if len(members) > 1 else 0.0)
            dots.append(members[metric].tolist())
        else:
            labels.append(run_label(runs, run_id))
            values.append(float(value))
            errors.append(0.0)
            dots.append([])
        colour_of.append(colours[run_id])
    bars = ax.bar(labels, values, yerr=errors, capsize=4, color=colour_of)
    ax.bar_label(bars, fmt="%.4f", fontsize=8, padding=6)
    for x, points in enumerate(dots):
        ax.plot([x] * len(points), points, "k.", markersize=4)
    if values:
        low = min(min(values), *(min(p) for p in dots if p)) if any(dots) else min(values)
        high = max(v + e for v, e in zip(values, errors, strict=True))
        ax.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.02) if high <= 1 else None)
    ax.tick_params(axis="x", labelrotation=15)


def _per_class_panel(ax, runs: pd.DataFrame, per_class: pd.DataFrame, colours: dict) -> None:
    classes = per_class.sort_values("class_order")["class"].drop_duplicates().tolist()
    run_ids = [r for r in runs["run_id"] if r in set(per_class["run_id"])]
    width = 0.8 / max(1, len(run_ids))
    for i, run_id in enumerate(run_ids):
        mine = per_class[per_class["run_id"] == run_id].set_index("class")
        xs = [c + i * width for c in range(len(classes))]
        ax.bar(
            xs,
            [mine["f1"].get(name, 0.0) for name in classes],
            width=width,
            color=colours.get(run_id, "grey"),
            label=run_label(runs, run_id),
        )
    ax.set_xticks([c + 0.4 - width / 2 for c in range(len(classes))], classes, rotation=20)
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_ylabel("F1")
    ax.set_title("test F1 per class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(3, len(run_ids)), loc="upper left")


def sweep_history_figure(trials: pd.DataFrame, objective: str) -> Figure:
    """A sweep's trials in order: each completed trial's objective, pruned and failed trials
    marked on the axis, and the best value so far (Optuna's optimization-history plot, drawn
    with matplotlib so that no plotting extra is needed).

    `trials` has the columns `trial`, `state` and `value` (NaN where a trial has none).
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    trials = trials.sort_values("trial")
    complete = trials[trials["state"] == "COMPLETE"]
    ax.scatter(complete["trial"], complete["value"], label="complete", color="tab:blue", zorder=3)
    if not complete.empty:
        best = complete["value"].cummin()
        ax.step(complete["trial"], best, where="post", color="tab:red", label="best so far")
    floor = complete["value"].min() if not complete.empty else 0.0
    for state, marker in (("PRUNED", "x"), ("FAIL", "v")):
        rows = trials[trials["state"] == state]
        if not rows.empty:
            ax.scatter(
                rows["trial"],
                [floor] * len(rows),
                marker=marker,
                color="grey",
                label=f"{state.lower()} (no value)",
            )
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title(f"sweep: {len(complete)} complete of {len(trials)} trials")
    ax.legend(loc="best")
    return fig
