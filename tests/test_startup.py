"""Commands start without the heavy libraries: parsing, `--help`, `--version` and usage errors
import neither MLflow nor torch (nor pandas, numpy, matplotlib); each command imports what it
uses when it runs. `python -X importtime` lists every module a process imported, so a module
that pulls one of them in at import time anywhere on the way fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("mlflow", "torch", "pandas", "numpy", "matplotlib", "sqlalchemy", "jieba", "sklearn")


def _imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tracker.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return proc, modules


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("train", "--help"),
        ("sweep", "--help"),
        ("compare", "--help"),
        ("predict", "--help"),
        ("promote", "--help"),
        ("sync", "--help"),
        ("server", "--help"),
    ],
    ids=" ".join,
)
def test_help_and_version_import_no_heavy_library(args):
    proc, modules = _imported(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tracker" in modules  # the listing was read
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_a_usage_error_says_so_without_importing_mlflow():
    proc, modules = _imported("train", "--model", "no-such-model")
    assert proc.returncode == 2
    assert "no-such-model" in proc.stderr
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
