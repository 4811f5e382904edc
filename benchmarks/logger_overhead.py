"""Caller-thread cost and drain rate of TrainingLogger against plain `mlflow.log_metric`.

Workload (issue 2): 50,000 steps x 3 metrics through TrainingLogger into a fresh SQLite store,
against 500 steps x 3 metrics through `mlflow.log_metric` (one call per metric per step).
Both run in this one process, each into its own fresh store, so the ratio is from one run.

    python benchmarks/logger_overhead.py --out benchmarks/results [--tracking-uri URI]

With --tracking-uri (an http:// server, say) the TrainingLogger part runs against that store.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker import TrainingLogger  # noqa: E402

KEYS = ("train/loss", "train/acc", "lr")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_logger(uri: str, steps: int) -> dict:
    log = TrainingLogger("bench-logger", run_name="training-logger", tracking_uri=uri)
    costs_ns: list[int] = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for step in range(1, steps + 1):
        metrics = {"train/loss": 1.0 / step, "train/acc": step / steps, "lr": 1e-3}
        t0 = clock()
        log.log_metrics(metrics, step=step)
        costs_ns.append(clock() - t0)
    handed_over_at = time.perf_counter()
    log.flush()
    drained_at = time.perf_counter()
    log.close()
    client = MlflowClient(tracking_uri=log.location.tracking_uri)
    stored = sum(len(client.get_metric_history(log.run_id, k)) for k in KEYS)
    points = steps * len(KEYS)
    costs_us = [c / 1000 for c in costs_ns]
    return {
        "steps": steps,
        "points_handed_over": points,
        "points_stored": stored,
        "caller_us_median": statistics.median(costs_us),
        "caller_us_p99": percentile(costs_us, 0.99),
        "caller_us_mean": statistics.fmean(costs_us),
        "loop_s": handed_over_at - started,
        "drain_after_last_call_s": drained_at - handed_over_at,
        "total_s": drained_at - started,
        "throughput_points_per_s": points / (drained_at - started),
    }


def bench_naive(uri: str, steps: int) -> dict:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-naive")
    costs_s: list[float] = []
    with mlflow.start_run(run_name="naive-log-metric") as run:
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            mlflow.log_metric("train/loss", 1.0 / step, step=step)
            mlflow.log_metric("train/acc", step / steps, step=step)
            mlflow.log_metric("lr", 1e-3, step=step)
            costs_s.append(time.perf_counter() - t0)
    client = MlflowClient(tracking_uri=uri)
    stored = sum(len(client.get_metric_history(run.info.run_id, k)) for k in KEYS)
    return {
        "steps": steps,
        "points_stored": stored,
        "per_step_us_median": statistics.median(costs_s) * 1e6,
        "per_step_us_mean": statistics.fmean(costs_s) * 1e6,
        "points_per_s": steps * len(KEYS) / sum(costs_s),
    }


def fresh_sqlite(folder: Path, name: str) -> str:
    db = folder / name / "mlflow.db"
    db.parent.mkdir(parents=True)
    uri = f"sqlite:///{db}"
    MlflowClient(tracking_uri=uri).search_experiments()  # run migrations outside the timing
    return uri


def logger_rows(result: dict) -> list[str]:
    """The table rows for the logger-vs-naive comparison (shared with the server benchmark)."""
    lg, nv = result["training_logger"], result["naive_log_metric"]
    return [
        "| measure | value |",
        "|---|---|",
        f"| caller cost per `log_metrics` call, median | {lg['caller_us_median']:.2f} µs |",
        f"| caller cost per `log_metrics` call, p99 | {lg['caller_us_p99']:.2f} µs |",
        f"| time to drain after the last call | {lg['drain_after_last_call_s']:.2f} s |",
        f"| throughput into the store | {lg['throughput_points_per_s']:,.0f} points/s |",
        f"| naive `mlflow.log_metric`, per step (3 calls) | {nv['per_step_us_median']:,.0f} µs |",
        f"| ratio naive / TrainingLogger per step | {result['ratio_naive_over_logger']:,.0f}x |",
        f"| points handed over / stored | {lg['points_handed_over']:,} / {lg['points_stored']:,} |",
    ]


def render_markdown(result: dict) -> str:
    lg, nv = result["training_logger"], result["naive_log_metric"]
    header = [
        "# Logger overhead",
        "",
        f"Store: `{result['store']}`; machine: {result['machine']}; "
        f"{lg['steps']:,} steps x 3 metrics (TrainingLogger) vs {nv['steps']:,} steps x 3 "
        "metrics (`mlflow.log_metric`).",
        "",
    ]
    return "\n".join([*header, *logger_rows(result), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--naive-steps", type=int, default=500)
    parser.add_argument("--tracking-uri", default=None, help="store for the TrainingLogger part")
    parser.add_argument("--name", default="logger_overhead")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        logger_uri = args.tracking_uri or fresh_sqlite(folder, "logger")
        naive_uri = fresh_sqlite(folder, "naive")
        logger = bench_logger(logger_uri, args.steps)
        naive = bench_naive(naive_uri, args.naive_steps)

    result = {
        "store": "sqlite (fresh, temporary)" if args.tracking_uri is None else args.tracking_uri,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "training_logger": logger,
        "naive_log_metric": naive,
        "ratio_naive_over_logger": naive["per_step_us_median"] / logger["caller_us_median"],
        "all_points_stored": logger["points_stored"] == logger["points_handed_over"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = render_markdown(result)
    (args.out / f"{args.name}.md").write_text(markdown)
    print(markdown)
    return 0 if result["all_points_stored"] else 1


if __name__ == "__main__":
    sys.exit(main())
