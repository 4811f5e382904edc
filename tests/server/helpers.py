"""Helpers for the fault tests: a counting logger wrapper, a small real training, counts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient

from trainers.config import TrainConfig
from trainers.data.pipeline import PreparedData
from trainers.loop import TrainResult, train
from trainers.models.registry import build_model, make_config

SMALL = {
    "fasttext": {"buckets": 5000},
    "textcnn": {"num_filters": 16},
    "lstm": {"hidden_size": 16},
}


@dataclass
class CountingLogger:
    """Forwards to a real logger and counts what the loop handed over, per metric key.

    `offset` is added to every step, so that several short trainings in one run continue one
    step axis (each `train()` call counts from step 1).
    """

    inner: Any
    offset: int = 0
    handed: Counter = field(default_factory=Counter)
    steps: dict[str, set[int]] = field(default_factory=dict)
    call_times: list[float] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        step += self.offset
        self.call_times.append(time.monotonic())
        self.handed.update(metrics.keys())
        for key in metrics:
            self.steps.setdefault(key, set()).add(step)
        self.inner.log_metrics(metrics, step=step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def max_gap(self, since: float, until: float) -> float:
        """Longest pause between two consecutive hand-overs within [since, until]."""
        times = [t for t in self.call_times if since <= t <= until]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def small_training(
    prepared: PreparedData,
    logger: Any,
    *,
    steps: int,
    model: str = "textcnn",
    batch_size: int = 32,
    eval_every: int = 25,
) -> TrainResult:
    """A real PyTorch training of `steps` optimizer steps on the slice, logged to `logger`."""
    config = TrainConfig(
        epochs=10_000, max_steps=steps, batch_size=batch_size, eval_every=eval_every, device="cpu"
    )
    net = build_model(
        model, make_config(model, SMALL[model]), len(prepared.vocab), prepared.num_classes, None
    )
    result = train(net, prepared, config, logger, progress=False)
    if isinstance(logger, CountingLogger):
        logger.offset += result.global_step + 1  # + the final test point's step
    return result


@dataclass(frozen=True)
class Counts:
    handed: int
    stored: int
    duplicates: int
    missing: int

    def line(self, label: str) -> str:
        return (
            f"{label}: handed over {self.handed}, stored {self.stored}, "
            f"duplicates {self.duplicates}, missing {self.missing}"
        )


def count_points(
    tracking_uri: str, run_id: str, handed: Mapping[str, int], steps: Mapping[str, set[int]]
) -> Counts:
    """Read every key's history back with `get_metric_history` and compare with the hand-over.

    `steps[key]` is the set of steps the loop logged `key` at; a duplicate is a second stored
    point at one step, a missing point a handed-over step with none stored.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    stored = duplicates = missing = 0
    for key in handed:
        history = client.get_metric_history(run_id, key)
        stored += len(history)
        seen = Counter(m.step for m in history)
        duplicates += sum(n - 1 for n in seen.values() if n > 1)
        missing += len(steps[key] - set(seen))
    return Counts(sum(handed.values()), stored, duplicates, missing)
