"""Resume checkpoints: everything needed to continue a training exactly where it stood.

Unlike the model checkpoint (weights for prediction), a resume checkpoint holds the optimizer
and scheduler states, the step, the position in the epoch and the random generator states
(so the data order and dropout masks continue as if nothing happened), the early-stopping
state with the best weights so far, and the configurations the run was started with. It holds
only tensors and plain values, so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainers.checkpoint import save_checkpoint

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
