"""The dashboard's web application (Starlette, which MLflow already brings): the page, its
vendored scripts, and a read-only JSON API over one store.

The page polls `/api/runs` four times a second; a run whose `version` changed has its curves fetched
again, already cut to the chart's width (`tracker.board.series`). Curves are cached here per
run and key until the run's version changes, so a finished run is read from the store once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tracker.board import views
from tracker.board.series import Series, downsample, series_from
from tracker.board.sources import RunRecord, Source, open_source

STATIC = Path(__file__).parent / "static"
RUNS_TTL_S = 0.2  # one listing serves the burst of requests a page update makes
MAX_CACHED_SERIES = 4000
MAX_CURVES = 400  # runs x keys in one request


@dataclass(frozen=True)
class BoardConfig:
    tracking_uri: str
    experiment: str | None = None  # the experiment the page opens on (name)
    mlflow_ui: str | None = None  # where runs link to in the MLflow UI, when one is known


class BadRequest(ValueError):
    pass


class Board:
    """The state behind the API: the store and the caches of runs and curves."""

    def __init__(self, config: BoardConfig, source: Source | None = None) -> None:
        self.config = config
        self.source = source or open_source(config.tracking_uri)
        self.evaluations = views.Evaluations(config.tracking_uri)
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[float, list[RunRecord]]] = {}
        self._series: OrderedDict[tuple[str, str, str], tuple[str, Series]] = OrderedDict()

    def runs(self, experiment_id: str) -> list[RunRecord]:
        with self._lock:
            cached = self._runs.get(experiment_id)
            if cached and time.monotonic() - cached[0] < RUNS_TTL_S:
                return cached[1]
        runs = self.source.runs(experiment_id)
        with self._lock:
            self._runs[experiment_id] = (time.monotonic(), runs)
        return runs

    def run_map(self, experiment_id: str) -> dict[str, RunRecord]:
        if not experiment_id:
            raise BadRequest("experiment is required")
        return {r.id: r for r in self.runs(experiment_id)}

    def series(self, run: RunRecord, key: str, by: str) -> Series:
        cache_key = (run.id, key, by)
        with self._lock:
            hit = self._series.get(cache_key)
            if hit and hit[0] == run.version:
                self._series.move_to_end(cache_key)
                return hit[1]
        steps, stamps, values = self.source.history(run.id, key)
        series = series_from(steps, stamps, values, by=by, start_ms=run.start_time)
        with self._lock:
            self._series[cache_key] = (run.version, series)
            while len(self._series) > MAX_CACHED_SERIES:
                self._series.popitem(last=False)
        return series


def _number(request: Request, name: str, default: float | None = None) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, not {raw!r}") from None


def _list(request: Request, name: str) -> list[str]:
    return [v for v in request.query_params.get(name, "").split(",") if v]


def build_app(config: BoardConfig, source: Source | None = None) -> Starlette:
    board = Board(config, source)

    def index(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    def settings(request: Request):
        experiments = board.source.experiments()
        wanted = next((e for e in experiments if e["name"] == config.experiment), None)
        return JSONResponse(
            {
                "experiments": experiments,
                "experiment": (wanted or (experiments[-1] if experiments else {})).get("id"),
                "mlflow_ui": config.mlflow_ui,
            }
        )

    def runs(request: Request):
        experiment = request.query_params.get("experiment", "")
        if not experiment.isdigit():  # MLflow's experiment ids, in every kind of store
            raise BadRequest(f"experiment must be an experiment id, not {experiment!r}")
        return JSONResponse({"runs": [r.to_json() for r in board.runs(experiment)]})

    def curves(request: Request):
        experiment = request.query_params.get("experiment", "")
        run_ids, keys = _list(request, "runs"), _list(request, "keys")
        by = request.query_params.get("x", "step")
        if by not in ("step", "time"):
            raise BadRequest("x must be step or time")
        if len(run_ids) * len(keys) > MAX_CURVES:
            raise BadRequest(f"at most {MAX_CURVES} curves in one request")
        width = int(_number(request, "width", 800) or 800)
        lo, hi = _number(request, "lo"), _number(request, "hi")
        known = board.run_map(experiment)
        result: dict[str, dict] = {}
        for run_id in run_ids:
            run = known.get(run_id)
            if run is None:
                continue
            result[run_id] = {
                key: downsample(board.series(run, key, by), width, lo, hi)
                for key in keys
                if key in run.metrics
            }
        return JSONResponse({"x": by, "curves": result})

    def compare(request: Request):
        experiment = request.query_params.get("experiment", "")
        known = board.run_map(experiment)
        selected = [known[r] for r in _list(request, "runs") if r in known]
        return JSONResponse(views.compare(selected, list(known.values())))

    def evaluations(request: Request):
        run_id = request.query_params.get("run", "")
        if not run_id:
            raise BadRequest("run is required")
        return JSONResponse({"run": run_id, "evaluations": board.evaluations.of_run(run_id)})

    def registry(request: Request):
        return JSONResponse({"models": views.registry(config.tracking_uri)})

    async def bad_request(request: Request, exc: Exception):
        return JSONResponse({"error": str(exc)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/settings", settings),
            Route("/api/runs", runs),
            Route("/api/curves", curves),
            Route("/api/compare", compare),
            Route("/api/evaluations", evaluations),
            Route("/api/registry", registry),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=1024)],
        exception_handlers={BadRequest: bad_request},
    )
