"""A change's cost on the training loop: `loop_slowdown.py` of an earlier commit and of the
working tree, run alternately in one session, so both see the same machine at the same time.

The earlier commit is checked out into a temporary git worktree; each run is a separate
process (one round of every variant), the two trees take turns, and per tree and step time
the minimum over the runs is reported with the spread (max/min), for `none` (the loop
without logging) and `newsdesk`. A change to the logger's hot path shows as a difference in
the `newsdesk` column with the `none` column unchanged.

    python benchmarks/before_after.py --before c6b8e1d --runs 5 --out benchmarks/results

With `--after REV` both sides are commits, each checked out: the working tree may change
meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from worktrees import checked_out

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "benchmarks/loop_slowdown.py"
VARIANTS = ("none", "newsdesk")


def one_run(tree: Path, seconds: float) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="before-after-") as out:
        subprocess.run(
            [
                sys.executable,
                str(tree / SCRIPT),
                "--rounds",
                "1",
                "--seconds",
                str(seconds),
                "--out",
                out,
            ],
            check=True,
            capture_output=True,
            cwd=tree,
        )
        return json.loads((Path(out) / "loop_slowdown.json").read_text())["results"]


def summarise(runs: list[list[dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per step time and variant: the minimum ms per step over the runs, and max/min."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for results in runs:
        for result in results:
            row = table.setdefault(f"{result['target_ms']:g} ms", {})
            for name in VARIANTS:
                ms = result["variants"][name]["ms_per_step_min"]
                cell = row.setdefault(name, {"min": ms, "max": ms})
                cell["min"], cell["max"] = min(cell["min"], ms), max(cell["max"], ms)
    for row in table.values():
        for cell in row.values():
            cell["spread"] = cell.pop("max") / cell["min"]
        row["newsdesk"]["slowdown_pct"] = (row["newsdesk"]["min"] / row["none"]["min"] - 1) * 100
    return table


def markdown(before: str, after: str, summary: dict[str, dict]) -> str:
    lines = [
        f"# Loop slowdown, {before} against {after}",
        "",
        "Alternating runs of `benchmarks/loop_slowdown.py` (one round each); minimum ms per "
        "step over the runs, spread (max/min) in brackets, slowdown against the same tree's "
        "loop without logging.",
        "",
        "| step | tree | no logging | newsdesk | slowdown |",
        "|---|---|---|---|---|",
    ]
    for target in summary["before"]:
        for tree in ("before", "after"):
            row = summary[tree][target]
            none, news = row["none"], row["newsdesk"]
            lines.append(
                f"| {target} | {tree} | {none['min']:.3f} ({none['spread']:.2f}) | "
                f"{news['min']:.3f} ({news['spread']:.2f}) | {news['slowdown_pct']:+.1f} % |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", default=None, help="a commit instead of the working tree")
    parser.add_argument("--runs", type=int, default=5, help="runs per tree")
    parser.add_argument("--seconds", type=float, default=1.0, help="loop time per round")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    after = args.after or "the working tree"
    revisions = {"before": args.before, "after": args.after}
    with (
        tempfile.TemporaryDirectory(prefix="before-after-") as holder,
        checked_out(Path(holder), revisions) as trees,
    ):
        runs: dict[str, list] = {"before": [], "after": []}
        order = list(trees.items())
        for _ in range(args.runs):
            for tree_name, tree in order:
                runs[tree_name].append(one_run(tree, args.seconds))
            order.reverse()  # neither tree always runs first
    summary = {tree: summarise(found) for tree, found in runs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"before": args.before, "after": after, "runs": args.runs, "summary": summary}
    (args.out / "before_after.json").write_text(json.dumps(report, indent=2))
    text = markdown(args.before, after, summary)
    (args.out / "before_after.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
