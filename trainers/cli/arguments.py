"""Parsed arguments to typed requests: the one place a training command's `argparse.Namespace`
is read, right after parsing; what follows takes the request (`trainers.cli.requests`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracker.cli.errors import UsageError
from trainers.catalogue import model_names, model_spec
from trainers.cli.overrides import (
    parse_assignments,
    setting_names,
    typed_overrides,
    unknown_setting,
)
from trainers.cli.requests import (
    DEFAULT_TIMEOUT_S,
    Parallel,
    ResumeRequest,
    Settings,
    SweepRequest,
    Tracking,
    TrainRequest,
    frozen,
)
from trainers.config import DataConfig, TrainConfig


def tracking_of(args: argparse.Namespace) -> Tracking:
    interval = 0.0 if getattr(args, "no_system_metrics", False) else args.system_metrics_interval
    return Tracking(args.tracking_uri, getattr(args, "experiment", None) or "", float(interval))


def parallel_of(args: argparse.Namespace) -> Parallel:
    return Parallel(
        getattr(args, "nproc", 1),
        getattr(args, "dist_timeout", DEFAULT_TIMEOUT_S),
        getattr(args, "threads", None),
    )


def settings_of(args: argparse.Namespace) -> Settings:
    """`--set` and the flags that set a config field, typed (a bad value is a ValueError
    naming the setting)."""
    sets = parse_assignments(args.set or [])
    data = typed_overrides(DataConfig, sets["data"], "data")
    flags = {
        "data": Path(args.data) if args.data else None,
        "tokenizer": args.tokenizer,
        "embeddings": Path(args.embeddings) if args.embeddings else None,
        "on_bad_line": args.on_bad_line,
        "cache_dir": Path(args.cache_dir) if args.cache_dir else None,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    train = typed_overrides(TrainConfig, sets["train"], "train")
    for flag in ("epochs", "max_steps", "seed", "device"):
        if getattr(args, flag) is not None:
            train[flag] = getattr(args, flag)
    return Settings(frozen(data), frozen(train), frozen(sets["model"]))


def check_model_settings(models: tuple[str, ...], given: Mapping[str, Any]) -> None:
    """Every `--set model.KEY` must be a setting of at least one chosen model; checked before
    torch is loaded, with the nearest name and the models' settings in the error."""
    known = {name: setting_names(model_spec(name).config_class()) for name in models}
    for key in given:
        if not any(key in names for names in known.values()):
            raise UsageError(unknown_setting(key, "model", known))


def check_data_folder(folder: Path | None) -> None:
    """`--data` must be an existing folder: said at once, not after the training stack loads."""
    if folder is None:
        return
    if folder.is_file():
        raise UsageError(
            f"--data {folder} is a file; give the folder that holds train, dev and test "
            f"(here probably --data {folder.parent})"
        )
    if not folder.is_dir():
        raise UsageError(f"--data {folder}: no such folder")


def train_request(args: argparse.Namespace, models: tuple[str, ...] | None = None) -> TrainRequest:
    """`models` None: the `--model` given (`all`: every model of the catalogue)."""
    if models is None:
        models = model_names() if args.model == "all" else (args.model,)
    settings = settings_of(args)
    check_model_settings(tuple(models), settings.model)
    check_data_folder(settings.data.get("data"))
    return TrainRequest(
        models=tuple(models),
        settings=settings,
        tracking=tracking_of(args),
        checkpoint_dir=Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else None,
        quiet=args.quiet,
        parallel=parallel_of(args),
        argv=tuple(args.argv),
        seeds=_seeds(args),
    )


def _seeds(args: argparse.Namespace) -> int:
    seeds = getattr(args, "seeds", 1)
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    return seeds


def resume_request(args: argparse.Namespace) -> ResumeRequest:
    return ResumeRequest(
        run_id=args.run_id,
        tracking=tracking_of(args),
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        quiet=args.quiet,
        parallel=parallel_of(args),
        argv=tuple(args.argv),
    )


def sweep_request(
    args: argparse.Namespace, enqueued: tuple[Mapping[str, Any], ...]
) -> SweepRequest:
    train = train_request(args, (args.model,))
    return SweepRequest(
        train=train,
        trials=args.trials,
        jobs=args.jobs,
        seed=args.seed if args.seed is not None else TrainConfig().seed,
        study=args.study,
        space=Path(args.space) if args.space else None,
        storage=args.storage,
        enqueued=enqueued,
        pruner_startup_trials=args.pruner_startup_trials,
        pruner_warmup_steps=args.pruner_warmup_steps,
    )
