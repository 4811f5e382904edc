"""`newsdesk sweep`: search a model's settings with Optuna, each trial a nested MLflow run.

The options are those of `newsdesk train` plus the study's; the work (Optuna, torch) is
imported only when the command runs, from `trainers.cli.sweep`.
"""

from __future__ import annotations

import argparse
import os

from trainers.catalogue import model_specs
from trainers.cli.arguments import sweep_request
from trainers.cli.train_commands import add_train_arguments


def parse_enqueued(text: str) -> dict[str, object]:
    """`train.lr=3e-3,model.dropout=0.2` -> {"train.lr": 0.003, "model.dropout": 0.2}."""
    values: dict[str, object] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--enqueue {text!r}: expected section.key=value[,section.key=value]")
        value: object = raw.strip()
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        values[key.strip()] = value
    return values


def cmd_sweep(args: argparse.Namespace) -> int:
    from trainers.cli.sweep import WORKER_ENV, run_sweep, run_worker_process

    enqueued = tuple(parse_enqueued(text) for text in args.enqueue or [])
    request = sweep_request(args, enqueued)
    if os.environ.get(WORKER_ENV) is not None:
        return run_worker_process(request)
    return run_sweep(request)


def add_sweep_command(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="search a model's settings with Optuna; trials are runs nested under one parent",
    )
    sweep.add_argument(
        "--model",
        choices=[spec.name for spec in model_specs() if spec.sweep_space],
        required=True,
        help="which model to tune",
    )
    sweep.add_argument("--trials", type=int, default=20, help="trials to finish (default: 20)")
    sweep.add_argument(
        "--jobs", type=int, default=1, help="trials trained at once, one process each (default: 1)"
    )
    sweep.add_argument(
        "--study",
        default=None,
        help="study name; the same name continues or joins a sweep (default: EXPERIMENT-MODEL)",
    )
    sweep.add_argument(
        "--space",
        default=None,
        metavar="FILE.toml",
        help="search space (default: learning rate, dropout, width and epochs per model)",
    )
    sweep.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna storage (default: optuna.db beside a SQLite tracking store)",
    )
    sweep.add_argument(
        "--enqueue",
        action="append",
        metavar="K=V[,K=V]",
        help="values to try first, e.g. train.lr=2e-3,model.dropout=0.5 (default: none)",
    )
    sweep.add_argument(
        "--pruner-startup-trials",
        type=int,
        default=5,
        metavar="N",
        help="trials that are never pruned, before the median is trusted (default: 5)",
    )
    sweep.add_argument(
        "--pruner-warmup-steps",
        type=int,
        default=0,
        metavar="N",
        help="steps of each trial before it may be pruned (default: 0)",
    )
    add_train_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)
