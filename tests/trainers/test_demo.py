"""`newsdesk demo` as `make demo` runs it, in a fresh folder (issue 38, item 1): every progress
line names its model, the predicted labels are the corpus's, and what it prints is what the
README shows. The trainings are cut short (`--max-steps`) to keep the suite's time; how far
the default trainings go on a small corpus is `test_small_corpus.py`'s, and the demo's own at
its defaults `benchmarks/demo_stopping.py`'s."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command
from tracker import schema

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from readme_demo import BEGIN, END  # noqa: E402

pytestmark = pytest.mark.slow  # four real trainings: not in `make check`
MAX_STEPS = 30

MODELS = ("linear", "fasttext", "textcnn", "lstm")
LABELS = ("positive", "neutral", "negative")


def shape(text: str) -> list[str]:
    """The lines of the demo's output with what differs between runs masked: run ids,
    numbers, model names (the comparison's order follows the scores) and labels."""
    masked = []
    for line in text.strip().splitlines():
        line = re.sub(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}\b", "<id>", line)
        line = re.sub(r"\d+(\.\d+)?", "<n>", line)
        line = re.sub(r"\b(" + "|".join(MODELS + LABELS) + r")\b", "<w>", line)
        line = re.sub(r"^<w>\s+<n>\s+\S.*$", "<w> <n> <headline>", line)
        masked.append(re.sub(r"\s+", " ", line))
    return masked


def readme_demo_output() -> str:
    block = (ROOT / "README.md").read_text(encoding="utf-8").split(BEGIN, 1)[1].split(END)[0]
    return block.split("```text\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    newsdesk = newsdesk_command()[0]
    done = subprocess.run(
        newsdesk_command("demo", "--max-steps", str(MAX_STEPS)),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=1200,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "out": done.stdout.replace(newsdesk, ".venv/bin/newsdesk"),
        "err": done.stderr,
        "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
    }


def test_every_progress_line_names_its_model(demo):
    progress = [line for line in demo["err"].splitlines() if " step " in line]
    assert {line.split(":", 1)[0] for line in progress} == {"fasttext", "textcnn", "lstm"}
    assert all(line.split(":", 1)[0] in MODELS for line in progress), progress[:5]
    client = MlflowClient(tracking_uri=demo["uri"])
    experiment = client.get_experiment_by_name("newsdesk")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.data.tags[schema.MODEL_TAG] for r in runs} == set(MODELS)


def test_predictions_are_the_corpus_s_labels(demo):
    lines = demo["out"].split("== predicting", 1)[1].split("== next", 1)[0].splitlines()[1:]
    assert len(lines) == 3
    assert {line.split()[0] for line in lines} <= set(LABELS)


def test_the_readme_shows_what_the_demo_prints(demo):
    assert shape(demo["out"]) == shape(readme_demo_output())
