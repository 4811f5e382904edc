"""`newsdesk train --nproc 2` against `--nproc 1` on THUCNews-45k, for each model.

    python benchmarks/ddp_thucnews.py [--data DIR] [--out benchmarks/results] [--repeats N]

Both variants see the same examples per optimizer step: one process with the model's default
batch (128), or two processes with half of it each (`train.batch_size=64`, global batch 128),
so the step count, the schedule and the examples per step are the same and the difference is
the parallelism. The variants are interleaved (1, 2, 1, 2, ...) and each runs in its own
child process into a fresh SQLite store; the minimum and the spread over the repeats are
reported. On a 2-core machine the two processes share the cores that one process uses with two
threads, so this measures the cost of the communication, not a speed-up: the point of
`--nproc` is correctness and the path to more machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_thucnews import MODELS, train_one  # noqa: E402

VARIANTS = {1: [], 2: ["--nproc", "2", "--set", "train.batch_size=64"]}


def measure(model: str, data: Path, nproc: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        row = train_one(model, data, store, VARIANTS[nproc])
    return {"nproc": nproc, **row}


def summarize(rows: list[dict]) -> dict:
    walls = [r["process_wall_s"] for r in rows]
    return {
        "wall_min_s": min(walls),
        "wall_max_s": max(walls),
        "test_acc": [r["test_acc"] for r in rows],
        "steps": rows[0]["steps"],
    }


def render(result: dict) -> str:
    lines = [
        "# DDP on THUCNews-45k: `--nproc 2` against `--nproc 1`",
        "",
        f"Machine: {result['machine']}; {result['repeats']} interleaved repeat(s) per variant; "
        "same global batch (128) and steps in both; wall time of the whole `newsdesk train` "
        "process (data from the token cache, training, test, uploads).",
        "",
        "| model | nproc | steps | wall min | wall max | test acc | ratio (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, variants in result["models"].items():
        base = variants["1"]["wall_min_s"]
        for nproc, s in variants.items():
            accs = ", ".join(f"{a:.2%}" for a in s["test_acc"])
            lines.append(
                f"| {model} | {nproc} | {s['steps']} | {s['wall_min_s']:.0f} s | "
                f"{s['wall_max_s']:.0f} s | {accs} | {s['wall_min_s'] / base:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set NEWSDESK_DATA to the THUCNews folder")
    data = Path(args.data).resolve()
    models: dict[str, dict] = {}
    for model in args.models:
        rows: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for nproc in (1, 2):
                rows[nproc].append(measure(model, data, nproc))
                print(
                    json.dumps(
                        {
                            k: rows[nproc][-1][k]
                            for k in ("nproc", "model", "test_acc", "process_wall_s", "steps")
                        }
                    ),
                    flush=True,
                )
        models[model] = {str(n): summarize(r) for n, r in rows.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "repeats": args.repeats,
        "models": models,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ddp_thucnews.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = render(result)
    (args.out / "ddp_thucnews.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
