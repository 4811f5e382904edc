"""The training commands of `newsdesk`: the application layer that wires `trainers` to `tracker`.

`newsdesk` itself is `tracker.cli`; this package contributes `train`, `demo`, `resume` and
`sweep` to it through the `newsdesk.commands` entry-point group (`add_commands`). The commands
are defined by topic (`train_commands`: train, demo, resume, whose work is in `training`;
`sweep_command`, whose work is in `sweep`); `wiring` is the one place that builds a logger and a
checkpointer from arguments; `launcher` starts and watches the processes of `--nproc N`.
Training code outside this package sees only the logger interface (`tracker.interface`) and
the names in `tracker.schema`.
"""

from __future__ import annotations

import argparse

from tracker.cli import main
from trainers.cli.sweep_command import add_sweep_command
from trainers.cli.train_commands import add_resume_command, add_trainer_commands

__all__ = ["add_commands", "main"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The `newsdesk.commands` entry point: add the training commands to `newsdesk`."""
    add_trainer_commands(sub)
    add_resume_command(sub)
    add_sweep_command(sub)
