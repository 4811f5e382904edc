"""`newsdesk demo` at its defaults, commit against commit: how long it takes, how many steps
each model trains, where its best checkpoint was, and its test accuracy.

    python benchmarks/demo_stopping.py [--before REV] [--after REV] [--rounds N]
        [--out benchmarks/results]

Each round runs the demo of every commit once, in turn (the variants interleaved), each in a
fresh folder (so a fresh embedded store), as a new user's `make demo` would, with the commit's
packages first on `PYTHONPATH` (a git worktree each); the steps and best steps are read back
from the store. Writes `demo_stopping.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worktrees import checked_out  # noqa: E402

from tracker import schema  # noqa: E402

NEWSDESK = Path(sys.executable).with_name("newsdesk")


def one_demo(tree: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as folder:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.perf_counter()
        done = subprocess.run(
            [str(NEWSDESK), "demo"], cwd=folder, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"demo at {tree} exited {done.returncode}: {done.stderr[-2000:]}")
        client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlruns/mlflow.db")
        experiment = client.get_experiment_by_name("newsdesk")
        models = {}
        for run in client.search_runs([experiment.experiment_id]):
            history = client.get_metric_history(run.info.run_id, schema.TRAIN_LOSS)
            metrics = run.data.metrics
            models[run.data.tags[schema.MODEL_TAG]] = {
                "steps": max((m.step for m in history), default=None),
                "best_step": metrics.get(schema.BEST_AT_STEP),
                "test_acc": metrics.get(schema.TEST_ACC),
                "wall_s": metrics.get(schema.WALL_TIME_S),
            }
    return {"wall_s": wall, "models": models}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="2bcdfa6", help="the earlier commit")
    parser.add_argument("--after", default=None, help="the later commit (default: working tree)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as holder:
        revisions = {"before": args.before, "after": args.after}
        with checked_out(Path(holder), revisions) as trees:
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    results[name].append(one_demo(tree))
                    print(name, json.dumps(results[name][-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"before": args.before, "after": args.after or "working tree", "rounds": results}
    (args.out / "demo_stopping.json").write_text(json.dumps(report, indent=1))
    lines = [
        "# `newsdesk demo`: steps, best step, test accuracy",
        "",
        f"before {args.before}, after {args.after or 'the working tree'}; "
        f"{args.rounds} round(s), interleaved.",
        "",
        "| commit | wall s | model | steps | best step | test acc |",
        "|---|---|---|---|---|---|",
    ]
    for name, rounds in results.items():
        for result in rounds:
            for model, row in sorted(result["models"].items()):
                lines.append(
                    f"| {name} | {result['wall_s']:.0f} | {model} | {row['steps']} | "
                    f"{row['best_step']} | {row['test_acc']:.4f} |"
                )
    (args.out / "demo_stopping.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
