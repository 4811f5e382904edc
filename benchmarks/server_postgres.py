"""The logger and the dashboard against a real `mlflow server` on a real PostgreSQL.

Same workloads as the SQLite benchmarks, so the numbers compare:
1. caller cost and drain rate: 50,000 steps x 3 metrics through TrainingLogger, against
   500 steps x 3 metrics through `mlflow.log_metric`, both against this server (one run);
2. `metric_history` loading 3 runs x 5 keys x 10,000 steps: through the server (one request
   per run and key) and, for comparison, straight from the PostgreSQL database (one query).

    python benchmarks/server_postgres.py --out benchmarks/results

It starts its own PostgreSQL cluster (durable settings: fsync on) on a free loopback port in a
temporary folder, and a 2-worker `mlflow server` on it; both are torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard import bench_history  # noqa: E402
from logger_overhead import bench_logger, bench_naive, logger_rows  # noqa: E402

from tracker.server.mlflow_server import TrackingServer  # noqa: E402
from tracker.server.postgres import LocalPostgres, PostgresConfig  # noqa: E402


def render_markdown(result: dict) -> str:
    hs, hd = result["metric_history_server"], result["metric_history_database"]
    header = [
        "# Against a PostgreSQL-backed tracking server",
        "",
        f"`mlflow server` ({result['server_workers']} workers, 127.0.0.1) on PostgreSQL "
        f"{result['postgres_version']} (fsync on); machine: {result['machine']}; same workload "
        "as the SQLite logger benchmark.",
        "",
    ]
    history = [
        f"| `metric_history`, {hs['points']:,} points, through the server | "
        f"{hs['seconds_best']:.2f} s |",
        f"| `metric_history`, same points, straight from PostgreSQL | {hd['seconds_best']:.2f} s |",
    ]
    return "\n".join([*header, *logger_rows(result), *history, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--naive-steps", type=int, default=500)
    parser.add_argument("--history-steps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, LocalPostgres(PostgresConfig()) as pg:
        uri = pg.create_database("bench")
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        subprocess.run([mlflow_bin, "db", "upgrade", uri], check=True, capture_output=True)
        version = re.search(
            r"\d+\.\d+",
            subprocess.run(
                [str(pg.bindir / "postgres"), "--version"], capture_output=True, text=True
            ).stdout,
        ).group()
        server = TrackingServer.on_free_port(
            uri, Path(tmp) / "artifacts", workers=args.workers
        ).start()
        try:
            started = time.perf_counter()
            logger = bench_logger(server.url, args.steps)
            naive = bench_naive(server.url, args.naive_steps)
            history_server = bench_history(server.url, args.history_steps)
            # The same runs, read straight from the database with one SQL query.
            from mlflow.tracking import MlflowClient

            from tracker.dashboard.compare import metric_history

            client = MlflowClient(server.url)
            exp = client.get_experiment_by_name("bench-history")
            run_ids = [r.info.run_id for r in client.search_runs([exp.experiment_id])]
            timings = []
            for _ in range(3):
                t0 = time.perf_counter()
                frame = metric_history(run_ids, KEYS_FOR_HISTORY, tracking_uri=uri)
                timings.append(time.perf_counter() - t0)
            history_db = {"points": len(frame), "seconds_best": min(timings)}
            wall = time.perf_counter() - started
        finally:
            server.stop()

    result = {
        "store": "mlflow server on PostgreSQL (fresh, temporary, loopback)",
        "postgres_version": version,
        "server_workers": args.workers,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "training_logger": logger,
        "naive_log_metric": naive,
        "ratio_naive_over_logger": naive["per_step_us_median"] / logger["caller_us_median"],
        "all_points_stored": logger["points_stored"] == logger["points_handed_over"],
        "metric_history_server": history_server,
        "metric_history_database": history_db,
        "wall_s": wall,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server_postgres.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = render_markdown(result)
    (args.out / "server_postgres.md").write_text(markdown)
    print(markdown)
    return 0 if result["all_points_stored"] else 1


KEYS_FOR_HISTORY = ["train/loss", "train/acc", "lr", "val/loss", "val/acc"]

if __name__ == "__main__":
    sys.exit(main())
