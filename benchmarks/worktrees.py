"""Earlier commits checked out beside the working tree, for benchmarks that compare them in one
session (`before_after.py`, `busy_machine.py`, `startup.py`): each commit is a temporary git
worktree, removed again however the benchmark ends."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checked_out(holder: Path, revisions: dict[str, str | None]) -> Iterator[dict[str, Path]]:
    """Each name's tree: the commit `revisions[name]` checked out under `holder`, or the working
    tree for None. The worktrees are removed on leaving."""
    trees: dict[str, Path] = {}
    try:
        for name, revision in revisions.items():
            if revision is None:
                trees[name] = ROOT
                continue
            path = holder / f"tree-{len(trees)}"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(path), revision],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            trees[name] = path
        yield trees
    finally:
        for path in trees.values():
            if path != ROOT:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(path)],
                    check=False,
                    capture_output=True,
                    cwd=ROOT,
                )
