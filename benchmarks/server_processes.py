"""What a `mlflow server` that newsdesk starts costs the machine: processes and memory.

    python benchmarks/server_processes.py --out benchmarks/results

`newsdesk server` starts `mlflow server` through `tracker.server.mlflow_server`, which turns
MLflow's job runner off unless the environment asks for it (`MLFLOW_SERVER_ENABLE_JOB_EXECUTION`).
Both variants are started here on a fresh SQLite store, interleaved over the rounds: the job
runner as MLflow starts it by default (`true`), and newsdesk's default. Measured once the
server answers /health and has settled: how many processes the server's process group holds
and their summed resident memory (psutil, the `system` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.server.mlflow_server import JOB_EXECUTION_ENV, TrackingServer  # noqa: E402

VARIANTS = {"job runner on (MLflow's default)": "true", "newsdesk default": None}
SETTLE_S = 10.0


def measure(folder: Path, job_execution: str | None, workers: int) -> dict:
    extra = {JOB_EXECUTION_ENV: job_execution} if job_execution else {}
    server = TrackingServer.on_free_port(
        f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", workers=workers, extra_env=extra
    )
    with server:
        time.sleep(SETTLE_S)  # the job runner's consumers start after /health answers
        assert server.proc is not None
        root = psutil.Process(server.proc.pid)
        procs = [root, *root.children(recursive=True)]
        rss = sum(p.memory_info().rss for p in procs if p.is_running())
    return {"processes": len(procs), "rss_mib": rss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="as `newsdesk server` defaults")
    args = parser.parse_args()
    os.environ.pop(JOB_EXECUTION_ENV, None)  # not a setting inherited from the shell
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, value in VARIANTS.items():
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(measure(Path(tmp), value, args.workers))
                print(name, results[name][-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": platform.platform(), "workers": args.workers, "results": results}
    (args.out / "server_processes.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Processes and memory of a newsdesk-started `mlflow server`",
        "",
        f"SQLite store, `--workers {args.workers}`, measured {SETTLE_S:.0f} s after /health "
        f"answered; {args.rounds} rounds, variants interleaved (min / max over rounds).",
        "",
        "| variant | processes | resident memory |",
        "|---|---|---|",
    ]
    for name, rows in results.items():
        procs = [r["processes"] for r in rows]
        rss = [r["rss_mib"] for r in rows]
        lines.append(
            f"| {name} | {min(procs)} / {max(procs)} | {min(rss):.0f} / {max(rss):.0f} MiB |"
        )
    (args.out / "server_processes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
