from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def write_slice(source: Path, target: Path, sizes: dict[str, int]) -> Path:
    """Copy the first lines of each real split (and class.txt) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "class.txt", target / "class.txt")
    for split, n in sizes.items():
        with (source / f"{split}.txt").open(encoding="utf-8") as fh:
            lines = [next(fh) for _ in range(n)]
        (target / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    return target


@pytest.fixture
def thucnews_slice(thucnews_dir: Path, tmp_path: Path) -> Path:
    return write_slice(thucnews_dir, tmp_path / "slice", {"train": 640, "dev": 200, "test": 200})
