"""How soon the logger's points reach a tracking server that is back from an outage, and how
long `close` takes on a server that stays down after a `flush` timed out.

    python benchmarks/store_outage.py --out benchmarks/results

A real `mlflow server` (SQLite, 127.0.0.1) is SIGKILLed while a `TrainingLogger` keeps
logging, and started again after each outage. Measured: the seconds from the restarted server
answering until every point is in it (read back with `MlflowClient`; nothing calls `flush`,
as in a training loop), and whether each point is stored exactly once. MLflow's client alone
retries a request for about 4 minutes with waits doubling to 120 s, so before the shipper
turned that off for itself this delay depended on where the outage ended in that schedule.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow.tracking import MlflowClient  # noqa: E402

from tracker import TrainingLogger  # noqa: E402
from tracker.server.mlflow_server import TrackingServer  # noqa: E402

POINTS = 100


def stored_steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "x"))


def bench_outage(server: TrackingServer, spool: Path, outage_s: float) -> dict:
    client = MlflowClient(tracking_uri=server.url)
    log = TrainingLogger("outage", tracking_uri=server.url, spool_dir=spool)
    log.log_metrics({"x": 0.0}, step=0)
    assert log.flush(timeout=60), "the server took nothing before the outage"
    server.kill()
    killed = time.monotonic()
    for step in range(1, POINTS + 1):
        log.log_metrics({"x": float(step)}, step=step)
        time.sleep(0.01)
    time.sleep(max(0.0, outage_s - (time.monotonic() - killed)))
    server.start()
    back = time.monotonic()
    while len(client.get_metric_history(log.run_id, "x")) < POINTS + 1:
        time.sleep(0.1)
    delay = time.monotonic() - back
    log.close()
    return {
        "outage_s": back - killed,
        "stored_after_s": delay,
        "exactly_once": stored_steps(client, log.run_id) == list(range(POINTS + 1)),
    }


def bench_close_after_timeout(server: TrackingServer, spool: Path, flush_s: float) -> dict:
    log = TrainingLogger("outage", tracking_uri=server.url, spool_dir=spool)
    log.log_metrics({"x": 0.0}, step=0)
    assert log.flush(timeout=60), "the server took nothing before the outage"
    server.kill()
    log.log_metrics({"x": 1.0}, step=1)
    flushed = log.flush(timeout=flush_s)
    started = time.monotonic()
    log.close()
    return {
        "flush_timeout_s": flush_s,
        "flush_returned": flushed,
        "close_s": time.monotonic() - started,
        "kept_for_sync": log.spool_path is not None,
    }


def render_markdown(result: dict) -> str:
    lines = [
        "# A tracking server down, then back",
        "",
        f"`mlflow server` (SQLite, 127.0.0.1) SIGKILLed while a `TrainingLogger` logs "
        f"{POINTS} points, restarted after the outage; machine: {result['machine']}.",
        "",
        "| outage (kill to answering again) | all points stored after | each point once |",
        "|---|---|---|",
    ]
    for row in result["outages"]:
        lines.append(
            f"| {row['outage_s']:.1f} s | {row['stored_after_s']:.1f} s | "
            f"{'yes' if row['exactly_once'] else 'NO'} |"
        )
    close = result["close_after_timeout"]
    lines += [
        "",
        f"Server left down: `flush(timeout={close['flush_timeout_s']:.0f})` returned "
        f"{close['flush_returned']}, then `close()` took {close['close_s']:.1f} s; the point "
        f"was {'kept for `newsdesk sync`' if close['kept_for_sync'] else 'NOT kept'}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--outages", type=float, nargs="+", default=[20.0, 45.0, 70.0])
    parser.add_argument("--flush-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = TrackingServer.on_free_port(f"sqlite:///{folder / 's.db'}", folder / "art")
        server.start()
        try:
            outages = [bench_outage(server, folder / "spool", s) for s in args.outages]
            close = bench_close_after_timeout(server, folder / "spool", args.flush_timeout)
        finally:
            server.stop()
    result = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "outages": outages,
        "close_after_timeout": close,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_outage.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = render_markdown(result)
    (args.out / "store_outage.md").write_text(markdown)
    print(markdown)
    ok = all(row["exactly_once"] for row in outages) and close["kept_for_sync"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
