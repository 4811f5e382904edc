"""A 20-trial TextCNN sweep on THUCNews-45k (`newsdesk sweep --jobs 2`), against the defaults.

    python benchmarks/sweep_thucnews.py [--data DIR] [--out benchmarks/results]
        [--trials 20] [--jobs 2] [--model textcnn]

It trains the model once with its default settings (`newsdesk train`) and then runs the sweep
into the same fresh SQLite store, and reports the default run's and the best trial's test
accuracy (the best trial by the sweep's objective, the lowest val/loss), how many trials were
pruned, and the wall time of each. Test accuracy is never what the sweep optimises: it is the
held-out check of what the sweep chose.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import schema  # noqa: E402


def newsdesk(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tracker.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--model", default="textcnn")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set NEWSDESK_DATA to the THUCNews folder")
    data = Path(args.data).resolve()
    embeddings = data / "char_embeddings_200d.npz"
    common = ["--data", str(data), "--experiment", "bench-sweep", "--quiet"]
    if embeddings.exists() and args.model != "fasttext":
        common += ["--embeddings", str(embeddings)]
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        default_s = newsdesk("train", "--model", args.model, "--tracking-uri", uri, *common)
        sweep_s = newsdesk(
            "sweep",
            "--model",
            args.model,
            "--trials",
            str(args.trials),
            "--jobs",
            str(args.jobs),
            "--tracking-uri",
            uri,
            "--study",
            "bench",
            *common,
        )
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("bench-sweep")
        runs = client.search_runs([exp.experiment_id], max_results=1000)
    default = next(r for r in runs if r.info.run_name == args.model)
    parent = next(
        r
        for r in runs
        if r.data.tags.get(schema.SWEEP_STUDY_TAG) and schema.PARENT_RUN_TAG not in r.data.tags
    )
    trials = [r for r in runs if r.data.tags.get(schema.PARENT_RUN_TAG) == parent.info.run_id]
    best = next(r for r in trials if r.info.run_id == parent.data.tags["best.run_id"])
    states = Counter(r.data.tags.get(schema.SWEEP_STATE_TAG) for r in trials)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "model": args.model,
        "trials": args.trials,
        "jobs": args.jobs,
        "default": {
            "test_acc": default.data.metrics[schema.TEST_ACC],
            "best_val_loss": default.data.metrics[schema.BEST_LOSS],
            "wall_s": default_s,
        },
        "sweep": {
            "wall_s": sweep_s,
            "states": dict(states),
            "best_trial": int(best.data.tags[schema.SWEEP_TRIAL_TAG]),
            "best_val_loss": parent.data.metrics[schema.SWEEP_BEST_VALUE],
            "best_test_acc": best.data.metrics[schema.TEST_ACC],
            "best_params": {
                k.removeprefix("best."): v
                for k, v in parent.data.tags.items()
                if k.startswith("best.") and k not in ("best.trial", "best.run_id")
            },
        },
    }
    d, s = result["default"], result["sweep"]
    lines = [
        f"# A {args.trials}-trial {args.model} sweep on THUCNews-45k (--jobs {args.jobs})",
        "",
        f"Machine: {result['machine']}. Objective: the lowest val/loss; test accuracy is the "
        "held-out check.",
        "",
        "| | test acc | best val/loss | wall |",
        "|---|---|---|---|",
        f"| default settings | {d['test_acc']:.2%} | {d['best_val_loss']:.4f} | "
        f"{d['wall_s']:.0f} s |",
        f"| best of the sweep (trial {s['best_trial']}) | {s['best_test_acc']:.2%} | "
        f"{s['best_val_loss']:.4f} | {s['wall_s']:.0f} s (whole sweep) |",
        "",
        f"Trials: {', '.join(f'{k} {v}' for k, v in sorted(s['states'].items()))}. "
        f"Best values: {', '.join(f'{k}={v}' for k, v in s['best_params'].items())}.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep_thucnews.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "sweep_thucnews.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
