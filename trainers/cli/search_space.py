"""What a sweep searches: one dimension per setting (`train.lr`, `model.dropout`, ...).

A dimension is a range (floats or ints, optionally on a log scale) or a list of choices; its
name is the `--set` key it overrides, so a trial is just `newsdesk train` with a few more
`--set` values. Each model has a default space (learning rate, dropout, width, epochs);
`--space FILE` replaces it with a TOML file of tables:

    [train.lr]
    low = 1e-4
    high = 1e-2
    log = true

    [model.num_filters]
    choices = [64, 128, 256]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.cli.errors import UsageError
from trainers.cli.overrides import SECTIONS


@dataclass(frozen=True)
class Dimension:
    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """The trial's value (an Optuna `Trial`; enqueued values come back as given)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return "choices " + ", ".join(map(str, self.choices))
        return f"{'log ' if self.log else ''}[{self.low}, {self.high}]"


DEFAULT_SPACES: dict[str, tuple[Dimension, ...]] = {
    # FastText's table learns at its own rate (`train.sparse_lr`), the setting it is most
    # sensitive to on its TF-IDF features (90.2-91.4 % between 5e-2 and 2e-3).
    "fasttext": (
        Dimension("train.lr", 5e-4, 1e-2, log=True),
        Dimension("train.sparse_lr", 5e-4, 2e-2, log=True),
        Dimension("model.dropout", 0.0, 0.6),
        Dimension("train.epochs", 2, 8),
    ),
    "textcnn": (
        Dimension("train.lr", 3e-4, 5e-3, log=True),
        Dimension("model.dropout", 0.0, 0.6),
        Dimension("model.num_filters", choices=(64, 128, 256)),
        Dimension("train.epochs", 2, 6),
    ),
    "lstm": (
        Dimension("train.lr", 5e-4, 5e-3, log=True),
        Dimension("model.dropout", 0.0, 0.5),
        Dimension("model.hidden_size", choices=(64, 128, 256)),
        Dimension("train.epochs", 2, 5),
    ),
}


def _dimension(name: str, table: Any, where: str) -> Dimension:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [{name}] must be a table with low/high or choices")
    unknown = set(table) - {"low", "high", "log", "choices"}
    if unknown:
        raise UsageError(f"{where}: [{name}] has unknown key {sorted(unknown)[0]!r}")
    if "choices" in table:
        choices = table["choices"]
        if not isinstance(choices, list) or not choices:
            raise UsageError(f"{where}: [{name}] choices must be a non-empty list")
        return Dimension(name, choices=tuple(choices))
    low, high = table.get("low"), table.get("high")
    numbers = (int, float)
    if not isinstance(low, numbers) or not isinstance(high, numbers) or not low < high:
        raise UsageError(f"{where}: [{name}] needs numbers low < high, got {low!r}, {high!r}")
    log = bool(table.get("log", False))
    if log and low <= 0:
        raise UsageError(f"{where}: [{name}] a log range needs low > 0")
    return Dimension(name, low, high, log=log)


def load_space(path: Path) -> tuple[Dimension, ...]:
    """Read a TOML search space; every error names the file and the setting."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--space {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--space {path}: not valid TOML ({exc})") from None
    dims = []
    for section, settings in document.items():
        if section not in SECTIONS or not isinstance(settings, dict):
            raise UsageError(
                f"{path}: top-level tables must be {', '.join(SECTIONS)}, got [{section}]"
            )
        for key, table in settings.items():
            dims.append(_dimension(f"{section}.{key}", table, str(path)))
    if not dims:
        raise UsageError(f"{path}: the search space is empty")
    return tuple(dims)


def space_for(model: str, path: Path | None, *, fixed_length: bool) -> tuple[Dimension, ...]:
    """The space to search: the file's, else the model's default. `fixed_length` (the user
    gave --epochs or --max-steps) drops a train.epochs dimension that could not apply."""
    dims = load_space(path) if path is not None else DEFAULT_SPACES[model]
    if fixed_length:
        dims = tuple(d for d in dims if d.name != "train.epochs")
    return dims
