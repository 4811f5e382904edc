"""What MLflow's system-metrics monitor costs a training loop (issue 14).

A real torch loop (an MLP train step, batch 128, about 1 ms per step on 2 cores) logs three
metrics per step through `TrainingLogger` into a fresh SQLite store, with the monitor off and
with it on. The monitor samples every `--interval` seconds (newsdesk's default is 10 s; the
benchmark uses 1 s, ten times as often, to make any cost visible). Rounds are interleaved
(off, on, off, on, ...), and the minimum and the spread of each variant's loop time are
reported, with the ratio of the minimums.

    python benchmarks/system_metrics.py --out benchmarks/results [--rounds 5] [--steps 1500]
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

import torch
from mlflow.tracking import MlflowClient
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker import TrainingLogger  # noqa: E402


def make_step(width: int = 512):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, width), nn.ReLU(), nn.Linear(width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))

    def step() -> float:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def run_loop(uri: str, steps: int, interval_s: float) -> dict:
    step = make_step()
    log = TrainingLogger("bench-system", tracking_uri=uri, system_metrics_interval_s=interval_s)
    started = time.perf_counter()
    for i in range(1, steps + 1):
        loss = step()
        log.log_metrics({"train/loss": loss, "train/acc": 0.5, "lr": 0.01}, step=i)
    loop_s = time.perf_counter() - started
    log.close()
    client = MlflowClient(tracking_uri=log.location.tracking_uri)
    run = client.get_run(log.run_id)
    system = [k for k in run.data.metrics if k.startswith("system/")]
    stored = len(client.get_metric_history(log.run_id, "train/loss"))
    return {"loop_s": loop_s, "system_metrics": len(system), "train_points": stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for variant, interval in (("off", 0.0), ("on", args.interval)):
                uri = f"sqlite:///{Path(tmp) / f'{variant}-{round_}.db'}"
                results[variant].append(run_loop(uri, args.steps, interval))
                print(variant, json.dumps(results[variant][-1]), flush=True)
    summary = {}
    for variant, rows in results.items():
        times = [r["loop_s"] for r in rows]
        summary[variant] = {
            "loop_min_s": min(times),
            "loop_max_s": max(times),
            "ms_per_step_min": 1000 * min(times) / args.steps,
            "system_metric_keys": max(r["system_metrics"] for r in rows),
            "all_points_stored": all(r["train_points"] == args.steps for r in rows),
        }
    ratio = summary["on"]["loop_min_s"] / summary["off"]["loop_min_s"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "steps": args.steps,
        "rounds": args.rounds,
        "interval_s": args.interval,
        "variants": summary,
        "ratio_on_over_off": ratio,
    }
    lines = [
        "# System metrics: loop cost of MLflow's monitor",
        "",
        f"Machine: {result['machine']}; {args.steps} steps of a real torch MLP step per round, "
        f"3 metrics per step through TrainingLogger; {args.rounds} interleaved rounds; monitor "
        f"sampling every {args.interval:g} s (the default is 10 s).",
        "",
        "| variant | loop min | loop max | ms/step (min) | system/* keys | all points stored |",
        "|---|---|---|---|---|---|",
    ]
    for variant, s in summary.items():
        lines.append(
            f"| monitor {variant} | {s['loop_min_s']:.2f} s | {s['loop_max_s']:.2f} s | "
            f"{s['ms_per_step_min']:.2f} | {s['system_metric_keys']} | {s['all_points_stored']} |"
        )
    lines += ["", f"Ratio (min on / min off): **{ratio:.3f}**"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "system_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "system_metrics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
