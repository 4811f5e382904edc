"""The catalogue is the one place that lists the models: `--model` choices, `all`, the sweep's
spaces and prediction read it, and a model another package registers through the
`newsdesk.models` entry-point group trains from the command line like newsdesk's own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command, run_ok, write_slice
from trainers.catalogue import BUILT_IN, MODELS_GROUP, model_names, model_spec
from trainers.config import data_config_for, train_config_for

TOY_MODULE = '''
"""A model another package contributes: a config, a module, and its spec."""
from dataclasses import dataclass

from torch import nn

from trainers.catalogue import Dimension, ModelSpec


@dataclass(frozen=True)
class ToyConfig:
    embed_dim: int = 16
    dropout: float = 0.0


class Toy(nn.Module):
    def __init__(self, config, vocab_size, num_classes, pretrained=None, random_init=True):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, config.embed_dim, mode="mean", padding_idx=0)
        self.out = nn.Linear(config.embed_dim, num_classes)

    def forward(self, ids):
        return self.out(self.bag(ids))


SPEC = ModelSpec(
    name="toy",
    config="toy_newsdesk_model:ToyConfig",
    model="toy_newsdesk_model:Toy",
    train_defaults={"epochs": 1, "lr": 5e-3},
    data_defaults={"tokenizer": "char"},
    sweep_space=(Dimension("train.lr", 1e-3, 1e-2, log=True),),
)
'''


def install_plugin(folder: Path) -> dict[str, str]:
    """The toy model as an installed distribution would be: its module and a dist-info
    folder whose entry points name its spec; returns the environment that finds it."""
    folder.mkdir(parents=True)
    (folder / "toy_newsdesk_model.py").write_text(TOY_MODULE, encoding="utf-8")
    info = folder / "toy_newsdesk_model-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: toy-newsdesk-model\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{MODELS_GROUP}]\ntoy = toy_newsdesk_model:SPEC\n", encoding="utf-8"
    )
    return {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1"}


def test_the_built_in_models_lead_with_the_linear_baseline():
    assert model_names()[: len(BUILT_IN)] == ("linear", "fasttext", "textcnn", "lstm")
    assert model_spec("linear").runner and not model_spec("fasttext").runner
    assert model_spec("fasttext").config_class().__name__ == "FastTextConfig"
    with pytest.raises(ValueError, match="unknown model 'bert'; choose one of linear"):
        model_spec("bert")


def test_training_and_data_defaults_come_from_the_spec():
    assert train_config_for("fasttext").monitor == "val/acc"
    assert train_config_for("lstm").evaluations == 7
    assert data_config_for("textcnn").tokenizer == "char+word"
    assert data_config_for("linear", {"tokenizer": "word"}).tokenizer == "word"


@pytest.mark.slow
def test_a_registered_model_trains_from_the_command_line(thucnews_dir, tmp_path, store_uri):
    env = install_plugin(tmp_path / "plugin")
    listed = subprocess.run(
        newsdesk_command("train", "--help"), capture_output=True, text=True, env=env
    )
    assert "toy" in listed.stdout
    swept = subprocess.run(
        newsdesk_command("sweep", "--help"), capture_output=True, text=True, env=env
    )
    assert "toy" in swept.stdout
    data = write_slice(thucnews_dir, tmp_path / "slice", {"train": 300, "dev": 100, "test": 100})
    command = ["train", "--model", "toy", "--data", str(data), "--epochs", "2"]
    done = run_ok(
        newsdesk_command(*command, "--quiet", "--tracking-uri", store_uri, "--experiment", "toy"),
        env=env,
    )
    assert "toy: run" in done.stdout
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == "toy"
    assert run.data.params["model.embed_dim"] == "16"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 6
    assert "test/acc" in run.data.metrics
    (output,) = run.outputs.model_outputs
    uri = f"models:/{output.model_id}"
    predicted = run_ok(
        newsdesk_command(
            "predict", "--model-uri", uri, "--tracking-uri", store_uri, "湖人队主场击败勇士队"
        ),
        env=env,
    )
    assert "湖人队主场击败勇士队" in predicted.stdout
