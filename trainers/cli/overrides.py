"""`--set section.key=value` overrides, typed by the dataclass field they replace."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SECTIONS = ("model", "train", "data")


def parse_assignments(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """["model.hidden_size=256", "train.lr=2e-3"] -> {"model": {...}, "train": {...}}."""
    parsed: dict[str, dict[str, str]] = {s: {} for s in SECTIONS}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. model.dropout=0.3")
        if section not in parsed:
            raise ValueError(f"--set {item!r}: section must be one of {', '.join(SECTIONS)}")
        parsed[section][name] = value.strip()
    return parsed


def _convert(raw: str, annotation: Any, default: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if raw.lower() in ("none", "null", ""):
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(raw, inner[0], default, where)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{where}: {raw!r} is not one of {', '.join(map(str, args))}")
        return raw
    if origin is tuple or isinstance(default, tuple):
        inner = args[0] if args else int
        return tuple(_convert(part, inner, None, where) for part in raw.split(",") if part)
    target = annotation if isinstance(annotation, type) else type(default)
    try:
        if target is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if target in (int, float, str, Path):
            return target(raw)
        return type(default)(raw) if default is not None else raw
    except ValueError:
        raise ValueError(f"{where}: cannot read {raw!r} as {target.__name__}") from None


def typed_overrides(config_cls: type, raw: Mapping[str, Any], section: str) -> dict[str, Any]:
    """Convert raw strings to the field types of `config_cls`; values that are not strings
    (a sweep trial's, typed already) are kept as they are; unknown keys are errors."""
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in fields:
            raise ValueError(unknown_setting(name, section, {section: sorted(fields)}))
        if not isinstance(value, str):
            out[name] = value
            continue
        default = fields[name].default
        out[name] = _convert(value, hints[name], default, f"--set {section}.{name}")
    return out


def setting_names(config_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def unknown_setting(key: str, section: str, known: Mapping[str, Sequence[str]]) -> str:
    """The one line for `--set section.key` that no chosen model (or config) has: the nearest
    known name, and each model's settings. `known` maps a model (or "train", "data") to its
    setting names."""
    names = sorted({name for names in known.values() for name in names})
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"; did you mean {section}.{close[0]}?" if close else ""
    listing = "; ".join(f"{owner}: {', '.join(names)}" for owner, names in known.items())
    return f"--set {section}.{key}: unknown setting{hint} (settings of {listing})"
