"""The dashboard against the MLflow UI's own fetches, on 200 runs x 10,000 points (issue 36).

For each store (SQLite, and PostgreSQL behind an `mlflow server`), in one run, interleaved,
`--rounds` times, each round on a fresh dashboard (cold caches) and then again (warm):

- first chart: the dashboard's settings, run list and one run's train/loss, val/loss and
  val/acc cut to 800 columns; MLflow: the runs search the UI makes (100 runs) and
  `get-history-bulk-interval` for the same run and keys (320 points per run, as the UI asks);
- 20-run overlay: the same three keys for 20 runs;

with the bytes each sends (gzip, as a browser asks). Both are real HTTP servers on
127.0.0.1. The dashboard reads the database directly; MLflow's UI goes through its server.

    python benchmarks/board.py --out benchmarks/results [--runs 200 --points 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import uvicorn
from mlflow.tracking import MlflowClient

from tracker.board.app import BoardConfig, build_app
from tracker.server.mlflow_server import TrackingServer
from tracker.server.ports import bind_port, free_port
from tracker.server.postgres import LocalPostgres, PostgresConfig

KEYS = ("train/loss", "val/loss", "val/acc")
VAL_EVERY = 100


def populate(uri: str, runs: int, points: int) -> tuple[str, list[str]]:
    """Runs made through MLflow, their points bulk-inserted into its tables."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench")
    ids = []
    for i in range(runs):
        run = client.create_run(exp, run_name=f"run-{i:03d}", tags={"model": "fasttext"})
        client.log_batch(run.info.run_id, params=[])
        ids.append(run.info.run_id)
    rows, latest = [], []
    start = int(time.time() * 1000)
    for n, run_id in enumerate(ids):
        for step in range(1, points + 1):
            value = 2.0 / math.sqrt(step) + (n % 7) * 0.01
            rows.append(("train/loss", value, start + step, run_id, step, False))
            if step % VAL_EVERY == 0:
                rows.append(("val/loss", value * 1.1, start + step, run_id, step, False))
                rows.append(("val/acc", 1 - value / 3, start + step, run_id, step, False))
        for key in KEYS:
            latest.append((key, 0.5, start + points, points, False, run_id))
    insert(uri, rows, latest, ids)
    return exp, ids


def insert(uri: str, rows: list, latest: list, ids: list[str]) -> None:
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(uri)
    with engine.begin() as con:
        con.execute(
            text(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (:k, :v, :t, :r, :s, :n)"
            ),
            [dict(zip("kvtrsn", r, strict=True)) for r in rows],
        )
        con.execute(
            text(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (:k, :v, :t, :s, :n, :r)"
            ),
            [dict(zip("kvtsnr", r, strict=True)) for r in latest],
        )
        con.execute(
            text(
                "UPDATE runs SET status = 'FINISHED', end_time = start_time + 1 "
                "WHERE run_uuid IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )


def fetch(url: str, data: bytes | None = None) -> int:
    """GET (or POST `data`) with gzip accepted, as a browser does; returns the bytes sent."""
    headers = {"Accept-Encoding": "gzip"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=120) as answer:
        return len(answer.read())


class Dashboard:
    def __init__(self, uri: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(build_app(BoardConfig(uri)), log_level="warning", lifespan="off")
        )
        sock = bind_port("127.0.0.1", port)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


def newsdesk_views(base: str, exp: str, ids: list[str]) -> dict[str, tuple[float, int]]:
    out = {}
    started = time.perf_counter()
    sent = fetch(f"{base}/api/settings") + fetch(f"{base}/api/runs?experiment={exp}")
    sent += fetch(
        f"{base}/api/curves?experiment={exp}&runs={ids[0]}&keys={','.join(KEYS)}&width=800"
    )
    out["first chart"] = (time.perf_counter() - started, sent)
    started = time.perf_counter()
    sent = fetch(
        f"{base}/api/curves?experiment={exp}&runs={','.join(ids[:20])}"
        f"&keys={','.join(KEYS)}&width=800"
    )
    out["20-run overlay"] = (time.perf_counter() - started, sent)
    return out


def mlflow_views(base: str, exp: str, ids: list[str]) -> dict[str, tuple[float, int]]:
    def bulk(run_ids: list[str]) -> int:
        sent = 0
        for key in KEYS:
            query = "&".join(f"run_ids={r}" for r in run_ids)
            sent += fetch(
                f"{base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?{query}"
                f"&metric_key={urllib.parse.quote(key)}&max_results=320"
            )
        return sent

    out = {}
    started = time.perf_counter()
    search = json.dumps({"experiment_ids": [exp], "max_results": 100}).encode()
    sent = fetch(f"{base}/ajax-api/2.0/mlflow/runs/search", search) + bulk(ids[:1])
    out["first chart"] = (time.perf_counter() - started, sent)
    started = time.perf_counter()
    sent = bulk(ids[:20])
    out["20-run overlay"] = (time.perf_counter() - started, sent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL runs as its own OS user
        postgres = LocalPostgres(PostgresConfig(directory=root / "pg", durable=False)).start()
        try:
            stores = {
                "SQLite": f"sqlite:///{root / 'mlflow.db'}",
                "PostgreSQL": postgres.create_database("bench"),
            }
            servers = {}
            for name, uri in stores.items():
                began = time.perf_counter()
                exp, ids = populate(uri, args.runs, args.points)
                print(f"{name}: {args.runs} runs x {args.points} points in "
                      f"{time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
                servers[name] = (exp, ids, TrackingServer.on_free_port(uri, root / name).start())
            for round_ in range(args.rounds):
                for name, uri in stores.items():
                    exp, ids, server = servers[name]
                    board = Dashboard(uri)
                    try:
                        for label, views in (
                            ("newsdesk ui, cold", newsdesk_views(board.url, exp, ids)),
                            ("newsdesk ui, warm", newsdesk_views(board.url, exp, ids)),
                            ("MLflow UI fetches", mlflow_views(server.url, exp, ids)),
                        ):
                            for view, (seconds, sent) in views.items():
                                cell = results.setdefault(name, {}).setdefault(label, {})
                                cell.setdefault(view, []).append((seconds, sent))
                    finally:
                        board.stop()
                print(f"round {round_ + 1} done", flush=True)
            for _, _, server in servers.values():
                server.stop()
        finally:
            postgres.stop()
    report(results, args)


def report(results: dict, args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        store: {
            label: {
                view: {
                    "min_s": round(min(s for s, _ in cells), 3),
                    "max_s": round(max(s for s, _ in cells), 3),
                    "bytes": cells[0][1],
                }
                for view, cells in views.items()
            }
            for label, views in labels.items()
        }
        for store, labels in results.items()
    }
    meta = {"runs": args.runs, "points_per_run": args.points, "rounds": args.rounds,
            "keys": list(KEYS), "val_every": VAL_EVERY}  # fmt: skip
    (args.out / "board.json").write_text(json.dumps({"setup": meta, "results": summary}, indent=1))
    lines = [
        f"# newsdesk ui vs the MLflow UI's fetches: {args.runs} runs x {args.points} points",
        "",
        f"`python benchmarks/board.py`, {args.rounds} interleaved rounds, minimum (maximum) "
        "seconds; bytes as sent with gzip.",
        "",
        "| store | client | first chart | bytes | 20-run overlay | bytes |",
        "|---|---|---|---|---|---|",
    ]
    for store, labels in summary.items():
        for label, views in labels.items():
            a, b = views["first chart"], views["20-run overlay"]
            lines.append(
                f"| {store} | {label} | {a['min_s']} ({a['max_s']}) | {a['bytes']:,} | "
                f"{b['min_s']} ({b['max_s']}) | {b['bytes']:,} |"
            )
    (args.out / "board.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
