"""The state of a training in progress, and the parts it acts on; both save and restore here.

`TrainingState` is everything the loop changes besides the model and optimizers: the step and
the position in the epoch's shuffled order, the generator state that produced that order, the
early-stopping bookkeeping with the best weights, and the histories for the final plots.
`save` and `restore` use the dataclass fields themselves as the checkpoint keys, so a key is
named once; a new field is saved and restored without touching either method.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# Keys of the saved state that belong to the parts rather than to `TrainingState`.
MODEL_KEY, OPTIMIZERS_KEY, SCHEDULERS_KEY, TORCH_RNG_KEY = (
    "model",
    "optimizers",
    "schedulers",
    "torch_rng_state",
)

History = list[tuple[int, float, float]]  # (step, loss, acc)


@dataclass
class TrainingParts:
    """What the loop trains with: built from the config, never saved as objects."""

    model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    dense: list[nn.Parameter]  # the parameters gradient clipping applies to
    device: torch.device
    total_steps: int
    steps_per_epoch: int
    # What the training step calls: the model itself, or its DistributedDataParallel wrapper
    # (which averages gradients across processes). Evaluation and saving use `model`.
    train_model: nn.Module | None = None

    @property
    def forward(self) -> nn.Module:
        return self.train_model if self.train_model is not None else self.model


@dataclass
class TrainingState:
    """The loop's own state at a step boundary (tensors and plain values only)."""

    global_step: int = 0
    epoch: int = 0
    next_start: int = 0  # index in the epoch's order where the next batch begins
    epoch_rng_state: torch.Tensor | None = None  # data-order generator at the start of `epoch`
    best_value: float = math.inf  # signed so that lower is better, whatever the mode
    best_step: int = 0
    # The best-so-far values logged as best/val_loss and best/val_acc (whatever is monitored).
    best_val_loss: float = math.inf
    best_val_acc: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    first_loss: float | None = None  # the divergence check compares every loss with it
    stopped_early: bool = False
    train_seconds: float = 0.0
    last_val_acc: float = math.nan
    train_history: History = field(default_factory=list)
    val_history: History = field(default_factory=list)
    world_size: int = 1  # processes of the job; a resume must use as many (same data shards)

    def save(self, parts: TrainingParts) -> dict[str, Any]:
        """This state plus the model, optimizer, scheduler and torch RNG states, as a dict
        that `torch.load(weights_only=True)` reads back."""
        saved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        saved[MODEL_KEY] = {k: v.detach().cpu() for k, v in parts.model.state_dict().items()}
        saved[OPTIMIZERS_KEY] = [o.state_dict() for o in parts.optimizers]
        saved[SCHEDULERS_KEY] = [s.state_dict() for s in parts.schedulers]
        saved[TORCH_RNG_KEY] = torch.get_rng_state()
        return saved

    @classmethod
    def restore(cls, saved: dict[str, Any], parts: TrainingParts) -> TrainingState:
        """Load the parts' states from `saved` and return the loop's state."""
        parts.model.load_state_dict(saved[MODEL_KEY])
        for optimizer, state in zip(parts.optimizers, saved[OPTIMIZERS_KEY], strict=True):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(parts.schedulers, saved[SCHEDULERS_KEY], strict=True):
            scheduler.load_state_dict(state)
        torch.set_rng_state(saved[TORCH_RNG_KEY])
        # A field added since the checkpoint was written takes its default.
        values = {f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved}
        for name in ("train_history", "val_history"):
            values[name] = [tuple(point) for point in values[name]]
        return cls(**values)

    def improve(self, value: float, model: nn.Module) -> bool:
        """Record `value` (signed, lower is better); True when it beats the best so far."""
        if not value < self.best_value:  # NaN never improves
            return False
        self.best_value, self.best_step = value, self.global_step
        self.best_state = {
            k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }
        return True
