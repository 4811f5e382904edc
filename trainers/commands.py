"""Training-side subcommands of `newsdesk` (demo; train comes with the trainers)."""

from __future__ import annotations

import argparse
import math

from tracker import TrainingLogger
from tracker.cli import add_tracking_uri


def cmd_demo(args: argparse.Namespace) -> int:
    """A short built-in logging example: a decaying loss curve streamed through the logger."""
    with TrainingLogger(
        args.experiment,
        run_name="logging-example",
        tracking_uri=args.tracking_uri,
        params={"example": {"steps": args.steps}},
        tags={"model": "example"},
    ) as log:
        for step in range(1, args.steps + 1):
            loss = 2.0 * math.exp(-step / 200) + 0.1
            log.log_metrics({"train/loss": loss, "epoch": step / 100}, step=step)
    print(f"logged {args.steps} steps to run {log.run_id} in {log.location.tracking_uri}")
    print("open the dashboard: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db")
    return 0


def add_trainer_commands(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the demo")
    add_tracking_uri(demo)
    demo.add_argument("--experiment", default="newsdesk-demo")
    demo.add_argument("--steps", type=int, default=1000)
    demo.set_defaults(func=cmd_demo)
