"""Curves cut to the chart's width keep what a person must see: every spike, every NaN."""

from __future__ import annotations

import math

import numpy as np

from tracker.board.series import Series, downsample, series_from


def _series(n: int) -> Series:
    rng = np.random.default_rng(0)
    return Series(x=np.arange(n, dtype=np.float64), y=rng.random(n))


def test_one_spike_among_300000_points_is_kept_and_the_count_is_told():
    series = _series(300_000)
    series.y[123_457] = 50.0
    series.y[200_001] = -7.0
    drawn = downsample(series, columns=800)
    assert drawn["total"] == 300_000
    assert drawn["shown"] <= 4 * 800
    assert 50.0 in drawn["y"] and -7.0 in drawn["y"]
    assert drawn["x"][drawn["y"].index(50.0)] == 123_457
    assert drawn["x"] == sorted(drawn["x"])
    # The first and last points stay, so the line spans the whole run.
    assert drawn["x"][0] == 0 and drawn["x"][-1] == 299_999


def test_non_finite_values_become_markers_one_per_kind_and_column():
    series = _series(10_000)
    series.y[10] = math.nan
    series.y[11] = math.nan  # same pixel column: one marker
    series.y[5_000] = math.inf
    series.y[9_000] = -math.inf
    drawn = downsample(series, columns=100)
    assert drawn["markers"] == [
        {"x": 10.0, "kind": "nan"},
        {"x": 5000.0, "kind": "inf"},
        {"x": 9000.0, "kind": "-inf"},
    ]
    assert all(math.isfinite(v) for v in drawn["y"])
    assert drawn["total"] == 10_000


def test_a_zoomed_range_gets_every_point_it_holds():
    series = _series(100_000)
    whole = downsample(series, columns=200)
    zoomed = downsample(series, columns=200, lo=50_000, hi=50_300)
    # Every point of the range, plus one beyond each edge so the line reaches the borders.
    assert zoomed["total"] == zoomed["shown"] == 303
    assert zoomed["x"] == [float(s) for s in range(49_999, 50_302)]
    assert whole["shown"] < whole["total"]


def test_short_curves_are_sent_whole():
    series = _series(50)
    drawn = downsample(series, columns=800)
    assert drawn["shown"] == drawn["total"] == 50
    assert drawn["y"] == series.y.tolist()


def test_wall_time_axis_counts_seconds_from_the_run_start():
    series = series_from(
        [3, 1, 2], [13_000, 11_000, 12_500], [0.3, 0.1, 0.2], by="time", start_ms=10_000
    )
    assert series.x.tolist() == [1.0, 2.5, 3.0]
    assert series.y.tolist() == [0.1, 0.2, 0.3]
    by_step = series_from(
        [3, 1, 2], [13_000, 11_000, 12_500], [0.3, 0.1, 0.2], by="step", start_ms=None
    )
    assert by_step.x.tolist() == [1.0, 2.0, 3.0]
