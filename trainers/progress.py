"""Training progress on the terminal, and a readable log when the output is not a terminal.

On a terminal, tqdm redraws one line in place. Piped to a file or a CI log, those redraws
become thousands of carriage-return frames, so there the progress is a plain line a few times
per epoch instead.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm.auto import tqdm

LINES_PER_EPOCH = 4


class Progress:
    """`update` once per optimizer step; `close` at the end. `label` (the model's name) leads
    every line, so that trainings one after another (`--model all`) or side by side can be told
    apart."""

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        steps_per_epoch: int = 1,
        enabled: bool = True,
        stream: TextIO | None = None,
        label: str = "",
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._prefix = f"{label}: " if label else ""
        self._total = total
        self._every = max(1, steps_per_epoch // LINES_PER_EPOCH)
        self._bar = None
        if enabled and self._stream.isatty():
            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=label or None,
                unit="step",
                dynamic_ncols=True,
                leave=False,
                file=self._stream,
            )

    def update(self, step: int, epoch: int, loss: float, val_acc: float) -> None:
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            if step % 10 == 0:
                self._bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", val_acc=f"{val_acc:.3f}")
        elif step % self._every == 0 or step == self._total:
            shown = "" if math.isnan(val_acc) else f"  val_acc {val_acc:.4f}"
            print(
                f"{self._prefix}step {step}/{self._total}  epoch {epoch}  loss {loss:.4f}{shown}",
                file=self._stream,
                flush=True,
            )

    def say(self, text: str) -> None:
        """One line about the training (why it stopped), under the bar or among the lines."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.write(f"{self._prefix}{text}", file=self._stream)
        else:
            print(f"{self._prefix}{text}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
