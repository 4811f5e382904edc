"""What a sweep searches: one dimension per setting (`train.lr`, `model.dropout`, ...).

A dimension is a range (floats or ints, optionally on a log scale) or a list of choices; its
name is the `--set` key it overrides, so a trial is just `newsdesk train` with a few more
`--set` values. Each model's spec in the catalogue (`trainers.catalogue`) has its default
space (learning rate, dropout, width, epochs);
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
from pathlib import Path
from typing import Any

from tracker.cli.errors import UsageError
from trainers.catalogue import Dimension, model_spec
from trainers.cli.overrides import SECTIONS


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
    dims = load_space(path) if path is not None else model_spec(model).sweep_space
    if fixed_length:
        dims = tuple(d for d in dims if d.name != "train.epochs")
    return dims
