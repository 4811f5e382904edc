"""`newsdesk demo` at its defaults, as `make demo` runs it, in a fresh folder (issue 38, item 1):
each neural model stops a little past its best, every progress line names its model, the
predicted labels are the corpus's, and what it prints is what the README shows."""

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
        newsdesk_command("demo"),
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


def test_each_neural_model_stops_a_little_past_its_best(demo):
    client = MlflowClient(tracking_uri=demo["uri"])
    experiment = client.get_experiment_by_name("newsdesk")
    runs = {
        r.data.tags[schema.MODEL_TAG]: r for r in client.search_runs([experiment.experiment_id])
    }
    assert set(runs) == set(MODELS)
    for model in ("fasttext", "textcnn", "lstm"):
        run = runs[model]
        params, metrics = run.data.params, run.data.metrics
        steps = max(m.step for m in client.get_metric_history(run.info.run_id, schema.TRAIN_LOSS))
        per_epoch = -(-int(params["data.train_size"]) // int(params["train.batch_size"]))
        budget = int(params["train.epochs"]) * per_epoch
        best = int(metrics[schema.BEST_AT_STEP])
        patience, every = int(params["train.patience"]), int(params["train.eval_every"])
        assert steps < budget / 2, f"{model}: {steps} of {budget} steps"
        assert best < steps <= best + patience + every, (model, best, steps)
        assert f"{model}: stopped early at step {steps}" in demo["err"]


def test_every_progress_line_names_its_model(demo):
    progress = [line for line in demo["err"].splitlines() if " step " in line]
    assert progress
    assert all(line.split(":", 1)[0] in MODELS for line in progress), progress[:5]


def test_predictions_are_the_corpus_s_labels(demo):
    lines = demo["out"].split("== predicting", 1)[1].split("== next", 1)[0].splitlines()[1:]
    assert len(lines) == 3
    assert {line.split()[0] for line in lines} <= set(LABELS)


def test_the_readme_shows_what_the_demo_prints(demo):
    assert shape(demo["out"]) == shape(readme_demo_output())
