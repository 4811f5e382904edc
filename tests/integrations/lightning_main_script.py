"""A user's Lightning script whose LightningModule is defined in the script itself, so that its
class lives in `__main__`; run as its own process by test_lightning.py.

Usage: python lightning_main_script.py DATA.pt ROOT_DIR EXPERIMENT
"""

from __future__ import annotations

import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tracker.integrations.lightning import NewsdeskLogger

TEMPERATURE = 2.0  # a script global the module's code reads: it must travel with the class


class Tiny(L.LightningModule):
    def __init__(self, vocab_size: int, num_classes: int, dim: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.emb = nn.EmbeddingBag(vocab_size, dim, padding_idx=0)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(x)) / TEMPERATURE

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def main(data_path: str, root: str, experiment: str) -> None:
    data = torch.load(data_path)
    torch.manual_seed(0)
    model = Tiny(data["vocab_size"], data["num_classes"])
    logger = NewsdeskLogger(experiment, run_name="tiny-main")
    trainer = L.Trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[ModelCheckpoint(monitor="val/loss", mode="min")],
        log_every_n_steps=1,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    train = DataLoader(TensorDataset(data["x_train"], data["y_train"]), batch_size=64)
    val = DataLoader(TensorDataset(data["x_val"], data["y_val"]), batch_size=128)
    trainer.fit(model, train, val)
    best = Tiny.load_from_checkpoint(trainer.checkpoint_callback.best_model_path).eval()
    with torch.no_grad():
        torch.save(best(data["x_val"][:8]), f"{root}/expected.pt")
    print(logger.run_id)


if __name__ == "__main__":
    main(*sys.argv[1:4])
