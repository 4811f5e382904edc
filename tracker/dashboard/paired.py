"""Is one model better than another, or did a seed pick the winner? A paired test on the same
test examples.

Two runs on the same test split (the same digest) are compared example by example: McNemar's
exact test asks whether the examples only one of them gets right fall to one side more often
than chance would put them (a binomial test on those discordant examples; the examples both
get right or both get wrong say nothing about the difference), and a paired bootstrap gives a
confidence interval of the accuracy difference. Both from SciPy. Runs on different splits are
not compared: the error names the two digests.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.predictions import RunPredictions
from tracker.schema import TEST_PREDICTIONS_ARTIFACT

DEFAULT_ALPHA = 0.05
DEFAULT_CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


class NotComparable(ValueError):
    """The two runs cannot be compared example by example; the message says why."""


@dataclass(frozen=True)
class PairedResult:
    """`a` against `b` on the same `n` test examples. `difference` is accuracy a − b, with
    its bootstrap interval; `only_a` / `only_b` count the examples only that run got right;
    `p_value` is McNemar's exact test (two-sided)."""

    a: str
    b: str
    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int
    only_b: int
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def difference(self) -> float:
        return self.accuracy_a - self.accuracy_b

    def significant(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.p_value < alpha

    def describe(self) -> str:
        return (
            f"accuracy {self.accuracy_a:.4f} against {self.accuracy_b:.4f} on {self.n} test "
            f"examples: difference {self.difference:+.4f} "
            f"({self.confidence:.0%} CI {self.ci_low:+.4f} to {self.ci_high:+.4f}), "
            f"{self.only_a} right only by the first, {self.only_b} only by the second, "
            f"McNemar exact p {_p_text(self.p_value)}"
        )

    def tags(self, prefix: str) -> dict[str, str]:
        """The result as registry tags (`<prefix>.p_value`, ...), so a version says why."""
        values = {
            "p_value": f"{self.p_value:.6g}",
            "accuracy_difference": f"{self.difference:.6g}",
            "ci_low": f"{self.ci_low:.6g}",
            "ci_high": f"{self.ci_high:.6g}",
            "confidence": f"{self.confidence:g}",
            "discordant_challenger": str(self.only_a),
            "discordant_champion": str(self.only_b),
            "examples": str(self.n),
            "test": "mcnemar-exact + paired bootstrap",
        }
        return {f"{prefix}.{k}": v for k, v in values.items()}


def _p_text(p_value: float) -> str:
    """`= 0.0725`, or `< 1e-300` where the exact p-value is below what a float holds."""
    return f"= {p_value:.3g}" if p_value > 0 else "< 1e-300"


def compare_predictions(
    a: RunPredictions,
    b: RunPredictions,
    *,
    names: tuple[str, str] = ("a", "b"),
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> PairedResult:
    """McNemar's exact test and the paired bootstrap interval of `a` against `b`; raises
    `NotComparable` when they are not predictions on the same test split."""
    from scipy import stats

    if a.digest != b.digest:
        raise NotComparable(
            f"{names[0]} and {names[1]} were tested on different data (test split digests "
            f"{a.digest[:12]} and {b.digest[:12]})"
        )
    if len(a.labels) != len(b.labels) or not np.array_equal(a.labels, b.labels):
        raise NotComparable(f"{names[0]} and {names[1]} hold different labels for the same split")
    if len(a.labels) == 0:
        raise NotComparable("the test split is empty")
    right_a, right_b = a.correct, b.correct
    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else stats.binomtest(only_a, discordant, 0.5).pvalue
    if resamples > 0:
        low, high = _bootstrap_interval(right_a, right_b, confidence, resamples, seed)
    else:  # the test alone (a ranking table): no interval
        low = high = float("nan")
    return PairedResult(
        a=names[0],
        b=names[1],
        n=len(a.labels),
        accuracy_a=float(right_a.mean()),
        accuracy_b=float(right_b.mean()),
        only_a=only_a,
        only_b=only_b,
        p_value=float(p_value),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
    )


def _bootstrap_interval(
    right_a: np.ndarray, right_b: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of mean(right_a − right_b) over examples resampled in pairs."""
    from scipy import stats

    difference = right_a.astype(np.float64) - right_b.astype(np.float64)
    if np.all(difference == difference[0]):
        return float(difference[0]), float(difference[0])  # no spread to resample
    result = stats.bootstrap(
        (difference,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def run_predictions(client: MlflowClient, run_id: str) -> RunPredictions | None:
    """The test predictions a run logged, or None when it logged none."""
    with tempfile.TemporaryDirectory(prefix="newsdesk-paired-") as tmp:
        try:
            local = client.download_artifacts(run_id, TEST_PREDICTIONS_ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        return RunPredictions.load(Path(local))


def compare_runs(
    client: MlflowClient,
    run_a: str,
    run_b: str,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> PairedResult:
    """The paired test of two runs by id; `NotComparable` names a run without predictions."""
    found = {}
    for run_id in (run_a, run_b):
        predictions = run_predictions(client, run_id)
        if predictions is None:
            raise NotComparable(
                f"run {run_id} has no test predictions ({TEST_PREDICTIONS_ARTIFACT}); runs "
                "logged before newsdesk kept them cannot be compared example by example"
            )
        found[run_id] = predictions
    return compare_predictions(
        found[run_a], found[run_b], names=(run_a, run_b), confidence=confidence
    )


def versus_best(
    client: MlflowClient, run_ids: list[str], alpha: float = DEFAULT_ALPHA
) -> list[str]:
    """For runs ranked best first: "best", then for each other run "tied (p=…)" when its
    difference from the best is not significant at `alpha`, "worse (p=…)" when it is, and
    "" when it cannot be compared (no predictions, another test split)."""
    if not run_ids:
        return []
    best = run_predictions(client, run_ids[0])
    marks = ["best"]
    for run_id in run_ids[1:]:
        other = run_predictions(client, run_id)
        if best is None or other is None:
            marks.append("")
            continue
        try:
            result = compare_predictions(best, other, resamples=0)
        except NotComparable:
            marks.append("")
            continue
        tied = not math.isnan(result.p_value) and result.p_value >= alpha
        shown = f"{result.p_value:.2g}" if result.p_value > 0 else "<1e-300"
        marks.append(f"{'tied' if tied else 'worse'} (p={shown})")
    return marks
