"""`NewsdeskCallback` under a real `transformers.Trainer` (tiny BERT from a config, real
THUCNews ids, real SQLite store)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.integrations.hf_script import build_trainer
from tracker.cli import main
from tracker.integrations.transformers import NewsdeskCallback

SCRIPT = Path(__file__).with_name("hf_script.py")


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_trainer_logs_loss_and_eval_metrics_once_to_the_environment_s_store(
    encoded_slice, store_uri, tmp_path, monkeypatch
):
    # The same variables as HF's own MLflowCallback.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf")
    callback = NewsdeskCallback()
    trainer = build_trainer(asdict(encoded_slice), str(tmp_path / "out"), [callback])
    trainer.train()

    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(callback.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "hf"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny-bert"
    assert run.data.params["learning_rate"] == "0.005"
    assert run.data.params["hidden_size"] == "16"  # the model config, too

    history = trainer.state.log_history
    expected_loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    assert len(expected_loss) == 16  # 8 batches x 2 epochs, logging_steps=1
    stored_loss = _history(client, callback.run_id, "loss")
    assert [s for s, _ in stored_loss] == [s for s, _ in expected_loss]
    assert [v for _, v in stored_loss] == pytest.approx([v for _, v in expected_loss], rel=1e-6)
    expected_eval = [(h["step"], h["eval_准确率"]) for h in history if "eval_准确率" in h]
    assert len(expected_eval) == 2
    stored_eval = _history(client, callback.run_id, "eval_准确率")
    assert [s for s, _ in stored_eval] == [s for s, _ in expected_eval] == [8, 16]
    assert [v for _, v in stored_eval] == pytest.approx([v for _, v in expected_eval])
    assert [s for s, _ in _history(client, callback.run_id, "eval_loss")] == [8, 16]
    # `epoch` comes with every log and every evaluation: still one point per step.
    epoch_steps = [s for s, _ in _history(client, callback.run_id, "epoch")]
    assert len(epoch_steps) == len(set(epoch_steps)) == 16

    # evaluate() after training lands in the same run, which ends FINISHED again.
    trainer.evaluate()
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [callback.run_id]
    assert runs[0].info.status == "FINISHED"
    assert len(_history(client, callback.run_id, "eval_loss")) == 2  # same step 16: kept once

    # `newsdesk compare` reads the run as it is, under Hugging Face's names (issue 38, item 8).
    out = tmp_path / "compare"
    assert main(["compare", "--experiment", "hf", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "compare.csv")
    assert frame.loc[0, "steps"] == 16
    assert frame.loc[0, "best_val/loss"] == pytest.approx(
        min(v for _, v in _history(client, callback.run_id, "eval_loss"))
    )


def test_mlflow_run_id_continues_an_existing_run(encoded_slice, store_uri, tmp_path, monkeypatch):
    first = NewsdeskCallback("hf", tracking_uri=store_uri)
    build_trainer(asdict(encoded_slice), str(tmp_path / "a"), [first]).train()
    monkeypatch.setenv("MLFLOW_RUN_ID", first.run_id)
    second = NewsdeskCallback(tracking_uri=store_uri)
    with pytest.warns(UserWarning, match="keeps its params.*output_dir"):
        build_trainer(asdict(encoded_slice), str(tmp_path / "b"), [second]).train()
    assert second.run_id == first.run_id
    client = MlflowClient(tracking_uri=store_uri)
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert client.get_run(first.run_id).data.params["output_dir"] == str(tmp_path / "a")
    assert len(client.get_metric_history(first.run_id, "loss")) == 32


@pytest.mark.parametrize(("kind", "status"), [("keyboard", "KILLED"), ("error", "FAILED")])
def test_a_training_that_dies_ends_its_run_at_exit(
    encoded_slice, store_uri, tmp_path, monkeypatch, kind, status
):
    data = tmp_path / "data.pt"
    torch.save(asdict(encoded_slice), data)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf")
    root = Path(__file__).parents[2]
    monkeypatch.setenv("PYTHONPATH", str(root))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(data), str(tmp_path / "out"), "raise-at", "5", kind],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hf").experiment_id])
    assert run.info.status == status
    # Every step logged before the failure is stored.
    assert [s for s, _ in _history(client, run.info.run_id, "loss")] == [1, 2, 3, 4]


def test_test_predictions_handed_to_the_callback_are_kept_with_the_run(
    encoded_slice, store_uri, tmp_path
):
    """After training, `trainer.predict` on a test set and the callback keeps what it
    predicted with the (finished) run, which ends FINISHED again."""
    from tracker.dashboard.paired import run_predictions

    callback = NewsdeskCallback("hf", tracking_uri=store_uri)
    trainer = build_trainer(asdict(encoded_slice), str(tmp_path / "out"), [callback])
    trainer.train()
    out = trainer.predict(trainer.eval_dataset)
    probs = torch.softmax(torch.as_tensor(out.predictions), dim=-1)
    callback.log_test_predictions(
        labels=out.label_ids,
        predicted=probs.argmax(-1).numpy(),
        probability=probs.max(-1).values.numpy(),
        digest="dev-slice",
    )
    client = MlflowClient(tracking_uri=store_uri)
    kept = run_predictions(client, callback.run_id)
    assert kept is not None and kept.digest == "dev-slice"
    assert kept.labels.tolist() == list(out.label_ids)
    assert kept.accuracy == pytest.approx(float((probs.argmax(-1).numpy() == out.label_ids).mean()))
    assert client.get_run(callback.run_id).info.status == "FINISHED"
