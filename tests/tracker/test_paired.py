"""The paired test itself and the predictions file it reads (no store, no training)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tracker.dashboard.paired import NotComparable, compare_predictions
from tracker.predictions import RunPredictions


def _predictions(labels, predicted, digest="d" * 64) -> RunPredictions:
    labels = np.asarray(labels)
    return RunPredictions(digest, labels, np.asarray(predicted), np.full(len(labels), 0.5))


def _pair(n: int, only_a: int, only_b: int, both: int):
    """Two models on `n` examples: `only_a` right only by a, `only_b` only by b, `both` by
    both, the rest by neither."""
    labels = np.zeros(n, dtype=int)
    right_a = np.zeros(n, dtype=bool)
    right_b = np.zeros(n, dtype=bool)
    right_a[:only_a] = True
    right_b[only_a : only_a + only_b] = True
    right_a[only_a + only_b : only_a + only_b + both] = True
    right_b[only_a + only_b : only_a + only_b + both] = True
    return _predictions(labels, np.where(right_a, 0, 1)), _predictions(
        labels, np.where(right_b, 0, 2)
    )


def test_mcnemar_counts_only_the_examples_the_two_disagree_on():
    a, b = _pair(1000, only_a=30, only_b=10, both=700)
    result = compare_predictions(a, b)
    assert (result.only_a, result.only_b, result.n) == (30, 10, 1000)
    assert result.p_value == pytest.approx(stats.binomtest(30, 40, 0.5).pvalue)
    assert result.significant(0.05)
    assert result.difference == pytest.approx(0.02)
    assert result.ci_low < 0.02 < result.ci_high and result.ci_low > 0
    flipped = compare_predictions(b, a)
    assert flipped.p_value == pytest.approx(result.p_value)
    assert flipped.difference == pytest.approx(-0.02)


def test_a_small_difference_is_not_significant_and_its_interval_spans_zero():
    a, b = _pair(1000, only_a=12, only_b=8, both=800)
    result = compare_predictions(a, b)
    assert not result.significant(0.05)
    assert result.ci_low < 0 < result.ci_high
    same = compare_predictions(a, a)
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_different_test_splits_are_not_compared_and_the_error_names_both_digests():
    a = _predictions([0, 1], [0, 1], digest="a" * 64)
    b = _predictions([0, 1], [0, 0], digest="b" * 64)
    with pytest.raises(NotComparable, match=f"{'a' * 12} and {'b' * 12}"):
        compare_predictions(a, b)
    c = _predictions([1, 1], [0, 0], digest="a" * 64)
    with pytest.raises(NotComparable, match="different labels"):
        compare_predictions(a, c)


def test_the_predictions_file_round_trips_and_refuses_other_files(tmp_path):
    original = RunPredictions(
        "f" * 64, np.array([0, 2, 1]), np.array([0, 1, 1]), np.array([0.9, 0.4, 0.7])
    )
    loaded = RunPredictions.load(original.save(tmp_path / "test.npz"))
    assert loaded.digest == original.digest
    assert loaded.labels.tolist() == [0, 2, 1] and loaded.predicted.tolist() == [0, 1, 1]
    assert loaded.probability == pytest.approx([0.9, 0.4, 0.7])
    assert loaded.accuracy == pytest.approx(2 / 3)
    other = tmp_path / "other.npz"
    np.savez(other, labels=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        RunPredictions.load(other)
    with pytest.raises(ValueError, match="3 labels, 2 predictions"):
        RunPredictions("f", np.zeros(3), np.zeros(2), np.zeros(3))
