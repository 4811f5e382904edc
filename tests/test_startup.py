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


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("train", "--model", "bert"), "invalid choice: 'bert'"),
        (
            ("train", "--model", "textcnn", "--data", "/no/such/folder"),
            "--data /no/such/folder: no such folder",
        ),
        (
            ("train", "--model", "textcnn", "--set", "model.dropuot=0.3"),
            "--set model.dropuot: unknown setting; did you mean model.dropout? (settings of "
            "textcnn: embed_dim, filter_sizes,",
        ),
        (
            ("train", "--model", "all", "--set", "train.lrr=0.1"),
            "--set train.lrr: unknown setting; did you mean train.lr?",
        ),
    ],
    ids=["unknown model", "missing data folder", "model setting typo", "train setting typo"],
)
def test_training_mistakes_are_one_line_before_any_heavy_import(args, expected):
    """A mistake in a training command costs no torch import (seconds) and no usage block."""
    proc, modules = _imported(*args)
    assert proc.returncode == 2
    lines = _error_lines(proc)
    assert len(lines) == 1 and expected in lines[0], lines
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_data_given_as_a_file_names_its_folder(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("标题\t0\n", encoding="utf-8")
    proc, modules = _imported("train", "--model", "fasttext", "--data", str(text))
    assert proc.returncode == 2
    assert _error_lines(proc) == [
        f"newsdesk train: error: --data {text} is a file; give the folder that holds train, "
        f"dev and test (here probably --data {tmp_path})"
    ]
    assert not modules & set(HEAVY)


def test_train_help_lists_every_model_setting_with_its_default():
    proc, _ = _imported("train", "--help")
    assert "settings for --set SECTION.KEY=VALUE" in proc.stdout
    for expected in (
        "textcnn:",
        "filter_sizes=2,3,4",
        "lstm:",
        "pooling=max",
        "train:",
        "lr=0.001",
    ):
        assert expected in proc.stdout
