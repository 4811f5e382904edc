"""A curve cut to what a chart can show: per pixel column, the bucket's minimum, maximum,
first and last point (M4, `tsdownsample`), so a spike at one step of 300,000 is drawn; and
every non-finite value kept apart as a marker, since a line cannot draw NaN or infinity.

The MLflow UI asks for 320 evenly spaced steps per run instead, which leaves spikes and
NaNs out without saying so: here the chart says how many points it shows of how many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tsdownsample import M4Downsampler

# M4 keeps four points per bucket; tsdownsample wants the output size as a multiple of 4.
POINTS_PER_COLUMN = 4
MAX_COLUMNS = 4000


@dataclass(frozen=True)
class Series:
    """One metric of one run in order of `x` (step, or seconds since the run started)."""

    x: np.ndarray  # float64, non-decreasing
    y: np.ndarray  # float64; NaN and +-inf are kept

    def __len__(self) -> int:
        return int(self.x.shape[0])


def series_from(steps, timestamps_ms, values, *, by: str, start_ms: int | None) -> Series:
    """The points ordered by step (`by="step"`) or by wall time since `start_ms`."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if by == "time":
        times = np.asarray(timestamps_ms, dtype=np.float64)
        origin = float(start_ms) if start_ms is not None else (times.min() if len(times) else 0)
        x = (times - origin) / 1000.0
    else:
        x = steps
    order = np.argsort(x, kind="stable")
    return Series(x=x[order], y=values[order])


def downsample(
    series: Series, columns: int, lo: float | None = None, hi: float | None = None
) -> dict:
    """The points to draw between `lo` and `hi` (the whole series by default) on `columns`
    pixel columns, as JSON: `x`, `y` (finite points), `markers` (non-finite points, at most
    one of each kind per column), `total` (points in the range) and `shown`."""
    columns = max(1, min(int(columns), MAX_COLUMNS))
    x, y = series.x, series.y
    if lo is not None or hi is not None:
        first = 0 if lo is None else int(np.searchsorted(x, lo, side="left"))
        last = len(x) if hi is None else int(np.searchsorted(x, hi, side="right"))
        # One point beyond each edge, so the line runs to the border of the zoomed view.
        first, last = max(0, first - 1), min(len(x), last + 1)
        x, y = x[first:last], y[first:last]
    total = len(x)
    finite = np.isfinite(y)
    fx, fy = x[finite], y[finite]
    budget = POINTS_PER_COLUMN * columns
    if len(fx) > budget:
        keep = np.unique(M4Downsampler().downsample(fx, fy, n_out=budget))
        fx, fy = fx[keep], fy[keep]
    markers = _markers(x[~finite], y[~finite], columns, x)
    return {
        "x": fx.tolist(),
        "y": fy.tolist(),
        "markers": markers,
        "total": total,
        "shown": len(fx) + len(markers),
    }


def _markers(mx: np.ndarray, my: np.ndarray, columns: int, x: np.ndarray) -> list[dict]:
    """Non-finite points, the first of each kind (nan, inf, -inf) in each pixel column."""
    if not len(mx):
        return []
    kinds = np.where(np.isnan(my), 0, np.where(my > 0, 1, 2))
    span = float(x[-1] - x[0]) or 1.0
    bucket = np.minimum(((mx - x[0]) / span * columns).astype(np.int64), columns - 1)
    _, first = np.unique(bucket * 3 + kinds, return_index=True)
    names = ("nan", "inf", "-inf")
    return [{"x": float(mx[i]), "kind": names[kinds[i]]} for i in sorted(first)]
