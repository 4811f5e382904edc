"""`NewsdeskLogger` under a real `lightning.Trainer` on a real THUCNews slice and SQLite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from mlflow.tracking import MlflowClient
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tests.conftest import newsdesk_command
from tracker.dashboard.paired import run_predictions
from tracker.dashboard.predict import load_model
from tracker.dashboard.registry import promote
from tracker.integrations.lightning import NewsdeskLogger
from tracker.predictions import log_test_predictions


class TinyClassifier(L.LightningModule):
    """A bag of character embeddings: trains in a second, logs Unicode metric names."""

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 16, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.emb = nn.EmbeddingBag(vocab_size, dim, padding_idx=0)
        self.fc = nn.Linear(dim, num_classes)
        self.seen: list[tuple[str, int, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        self.log("训练/损失", loss)
        self.seen.append(("train/loss", self.global_step, loss.item()))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.log("验证/准确率", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def _loaders(data):
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=128)
    return train, val


def _trainer(logger, tmp_path, callbacks=(), epochs=2):
    return L.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=list(callbacks),
        log_every_n_steps=1,
        default_root_dir=str(tmp_path / "lightning"),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_fit_stores_every_value_once_and_the_best_checkpoint_is_promotable(
    encoded_slice, store_uri, tmp_path
):
    torch.manual_seed(0)
    model = TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes)
    logger = NewsdeskLogger("lit", tracking_uri=store_uri, run_name="tiny")
    checkpoint = ModelCheckpoint(monitor="val/loss", mode="min")
    train, val = _loaders(encoded_slice)
    _trainer(logger, tmp_path, [checkpoint]).fit(model, train, val)

    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny"
    assert run.data.params["lr"] == "0.05"
    assert run.data.params["vocab_size"] == str(encoded_slice.vocab_size)

    # Every training step's loss, once, at the step Lightning gave it (8 batches x 2 epochs).
    stored = _history(client, logger.run_id, "train/loss")
    expected = [(step, value) for _, step, value in model.seen]
    assert [s for s, _ in stored] == [s for s, _ in expected] == list(range(16))
    assert [v for _, v in stored] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert len(_history(client, logger.run_id, "训练/损失")) == 16
    # Unicode names kept (MLFlowLogger would store "/"), one value per validation epoch.
    accuracy = _history(client, logger.run_id, "验证/准确率")
    assert len(accuracy) == 2 and all(0.0 <= v <= 1.0 for _, v in accuracy)

    # The best checkpoint (by the callback's monitor) is a READY model of the run ...
    best = float(checkpoint.best_model_score)
    assert run.data.metrics["best/val/loss"] == pytest.approx(best, rel=1e-6)
    assert min(v for _, v in _history(client, logger.run_id, "val/loss")) == pytest.approx(best)
    assert logger.model_uri is not None
    # ... that `promote` registers as champion and that predicts like the trained module.
    promotion = promote("lit", metric="best/val/loss", mode="min", tracking_uri=store_uri)
    assert promotion.promoted and promotion.candidate.run_id == logger.run_id
    served = load_model("models:/lit-classifier@champion", tracking_uri=store_uri)
    x = encoded_slice.x_val[:5]
    frame = served.predict(pd.DataFrame(x.numpy()))
    restored = TinyClassifier.load_from_checkpoint(checkpoint.best_model_path)
    with torch.no_grad():
        np.testing.assert_allclose(frame.to_numpy(), restored(x).numpy(), rtol=1e-5)


class _InterruptAt(Callback):
    def __init__(self, step: int, exc: BaseException) -> None:
        self.step, self.exc = step, exc

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise self.exc


def test_ctrl_c_in_fit_ends_the_run_killed_and_keeps_the_points(encoded_slice, store_uri, tmp_path):
    model = TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes)
    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    train, val = _loaders(encoded_slice)
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into sys.exit(1)
        _trainer(logger, tmp_path, [_InterruptAt(5, KeyboardInterrupt())]).fit(model, train, val)
    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "KILLED"
    # Lightning hands a step's values to loggers after the batch-end callbacks: the step
    # interrupted there (4) never reached the logger; every one that did is stored.
    assert [s for s, _ in _history(client, logger.run_id, "train/loss")] == list(range(4))
    assert not client.search_logged_models([run.info.experiment_id])


def test_an_error_in_fit_ends_the_run_failed(encoded_slice, store_uri, tmp_path):
    model = TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes)
    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    train, val = _loaders(encoded_slice)
    with pytest.raises(ValueError, match="broken batch"):
        _trainer(logger, tmp_path, [_InterruptAt(3, ValueError("broken batch"))]).fit(
            model, train, val
        )
    assert MlflowClient(tracking_uri=store_uri).get_run(logger.run_id).info.status == "FAILED"


def test_test_after_fit_lands_in_the_same_run(encoded_slice, store_uri, tmp_path):
    model = TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes)
    model.test_step = model.validation_step
    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    train, val = _loaders(encoded_slice)
    trainer = _trainer(logger, tmp_path, epochs=1)
    trainer.fit(model, train, val)
    trainer.test(model, val)
    client = MlflowClient(tracking_uri=store_uri)
    runs = client.search_runs([client.get_experiment_by_name("lit").experiment_id])
    assert [r.info.run_id for r in runs] == [logger.run_id]
    assert runs[0].info.status == "FINISHED"
    assert len(_history(client, logger.run_id, "验证/准确率")) == 2  # one val epoch + the test


class _SigtermAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_in_fit_ends_the_run_killed(encoded_slice, store_uri, tmp_path):
    model = TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes)
    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    train, val = _loaders(encoded_slice)
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException
        _trainer(logger, tmp_path, [_SigtermAt(3)]).fit(model, train, val)
    assert MlflowClient(tracking_uri=store_uri).get_run(logger.run_id).info.status == "KILLED"


def test_hyperparameters_given_as_an_argparse_namespace_are_logged(store_uri):
    """Lightning lets a script hand its parsed arguments to `log_hyperparams` as they are."""
    from argparse import Namespace

    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    logger.log_hyperparams(Namespace(lr=0.05, layers={"dim": 16}, act=F.relu))
    logger.finalize("success")
    params = MlflowClient(tracking_uri=store_uri).get_run(logger.run_id).data.params
    assert params["lr"] == "0.05" and params["layers.dim"] == "16" and params["act"] == "relu"


class _KeepsTestPredictions(TinyClassifier):
    """A module that hands its test predictions to the run, as docs/dashboard.md shows."""

    def on_test_epoch_start(self):
        self.kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def test_step(self, batch, batch_idx):
        x, y = batch
        probs = F.softmax(self(x), dim=1)
        self.kept.append((y, probs.argmax(1), probs.max(1).values))

    def on_test_epoch_end(self):
        columns = zip(*self.kept, strict=True)
        labels, predicted, probability = (torch.cat(parts) for parts in columns)
        log_test_predictions(
            self.logger.experiment,
            labels=labels.numpy(),
            predicted=predicted.numpy(),
            probability=probability.numpy(),
            digest="dev-slice-128",
        )


def test_a_lightning_run_keeps_the_test_predictions_it_is_handed(
    encoded_slice, store_uri, tmp_path
):
    model = _KeepsTestPredictions(encoded_slice.vocab_size, encoded_slice.num_classes)
    logger = NewsdeskLogger("lit", tracking_uri=store_uri)
    train, val = _loaders(encoded_slice)
    trainer = _trainer(logger, tmp_path, epochs=1)
    trainer.fit(model, train, val)
    trainer.test(model, val)
    kept = run_predictions(MlflowClient(tracking_uri=store_uri), logger.run_id)
    assert kept is not None and kept.digest == "dev-slice-128"
    assert kept.labels.tolist() == encoded_slice.y_val.tolist()
    with torch.no_grad():
        expected = model(encoded_slice.x_val).argmax(1)
    assert kept.predicted.tolist() == expected.tolist()


MAIN_SCRIPT = Path(__file__).with_name("lightning_main_script.py")


def test_a_module_defined_in_the_training_script_is_promoted_and_loads(
    encoded_slice, store_uri, tmp_path
):
    """The class lives in the script's `__main__`: it travels with the model, `promote` loads
    it before crowning it, and another process predicts with it (issue 38, item 3)."""
    data = tmp_path / "data.pt"
    torch.save(asdict(encoded_slice), data)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "OMP_NUM_THREADS": "1"}
    trained = subprocess.run(
        [sys.executable, str(MAIN_SCRIPT), str(data), str(tmp_path), "lit-main"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_id = trained.stdout.split()[-1]
    promoted = subprocess.run(
        newsdesk_command(
            "promote", "--experiment", "lit-main", "--metric", "best/val/loss", "--mode", "min"
        ),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert promoted.returncode == 0, promoted.stderr
    assert "first champion" in promoted.stdout and run_id[:8] in promoted.stdout
    code = (
        "import sys, torch, pandas as pd\n"
        "from tracker.dashboard.predict import load_model\n"
        "model = load_model('models:/lit-main-classifier@champion', sys.argv[1])\n"
        "x = torch.load(sys.argv[2])['x_val'][:8]\n"
        "out = model.predict(pd.DataFrame(x.numpy())).to_numpy()\n"
        "expected = torch.load(sys.argv[3]).numpy()\n"
        "print(abs(out - expected).max())\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code, store_uri, str(data), str(tmp_path / "expected.pt")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.strip()) < 1e-5


def test_promote_refuses_a_model_that_does_not_load(encoded_slice, store_uri, tmp_path):
    """The module class is importable in the training process (a test module) but not where
    `newsdesk promote` runs: the promotion stops with one line and no alias moves."""
    logger = NewsdeskLogger("lit-gone", tracking_uri=store_uri)
    _trainer(logger, tmp_path, [ModelCheckpoint(monitor="val/loss", mode="min")]).fit(
        TinyClassifier(encoded_slice.vocab_size, encoded_slice.num_classes),
        *_loaders(encoded_slice),
    )
    assert logger.model_uri is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = subprocess.run(
        newsdesk_command(
            "promote",
            "--experiment",
            "lit-gone",
            "--metric",
            "best/val/loss",
            "--mode",
            "min",
            "--tracking-uri",
            store_uri,
        ),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=elsewhere,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert refused.returncode == 2, refused.stderr
    assert "does not load" in refused.stderr and "TinyClassifier" not in refused.stdout
    assert "so it is not promoted; lit-gone-classifier has no champion" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    client = MlflowClient(tracking_uri=store_uri)
    assert not [v for v in client.search_model_versions("name='lit-gone-classifier'")]
