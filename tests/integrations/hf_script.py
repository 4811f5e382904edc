"""A user's Hugging Face training script, run as its own process by test_transformers.py.

Usage: python hf_script.py DATA.pt OUTPUT_DIR [raise-at-step N {keyboard,error}]
"""

from __future__ import annotations

import sys

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from tracker.integrations.transformers import NewsdeskCallback


class TensorDataset(torch.utils.data.Dataset):
    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": (self.ids[i] != 0).long(),
            "labels": self.labels[i],
        }


def tiny_bert(vocab_size: int, num_labels: int) -> BertForSequenceClassification:
    """Randomly initialised from a config: nothing is downloaded."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config)


def accuracy(prediction) -> dict[str, float]:
    return {"准确率": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


class RaiseAt(TrainerCallback):
    def __init__(self, step: int, exc: BaseException) -> None:
        self.step, self.exc = step, exc

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise self.exc


def build_trainer(data: dict, output_dir: str, callbacks: list) -> Trainer:
    args = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=2,
        per_device_train_batch_size=64,
        per_device_eval_batch_size=128,
        learning_rate=5e-3,
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        run_name="tiny-bert",
    )
    return Trainer(
        model=tiny_bert(data["vocab_size"], data["num_classes"]),
        args=args,
        train_dataset=TensorDataset(data["x_train"], data["y_train"]),
        eval_dataset=TensorDataset(data["x_val"], data["y_val"]),
        compute_metrics=accuracy,
        callbacks=callbacks,
    )


if __name__ == "__main__":
    data = torch.load(sys.argv[1])
    callbacks: list = [NewsdeskCallback()]
    if len(sys.argv) > 3:
        step, kind = int(sys.argv[4]), sys.argv[5]
        callbacks.append(RaiseAt(step, KeyboardInterrupt() if kind == "keyboard" else ValueError()))
    trainer = build_trainer(data, sys.argv[2], callbacks)
    trainer.train()
    print(callbacks[0].run_id)
