"""The `newsdesk` command: parsing, the commands' plugins, and how a command ends.

The tracker's own commands (sync, compare, promote, predict, ui, server) are built in and work
with the core install alone. Other packages add commands through the `newsdesk.commands`
entry-point group, as pytest and Flask plugins do: each entry point names a function that takes
the subparsers and adds its commands. `trainers` contributes train, demo, resume and sweep that
way, so nothing in `tracker` imports `trainers`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import NoReturn

from tracker.cli.errors import DEBUG_ENV, report
from tracker.cli.options import HelpFormatter, resolve_experiment
from tracker.cli.server_command import add_server_command
from tracker.cli.tracking_commands import add_dashboard_commands, add_sync_command
from tracker.interrupts import sigterm_as_interrupt
from tracker.store.location import resolve_store

# Entry points of this group add commands: `name = "package.module:function"`, where
# `function(subparsers)` adds them.
COMMANDS_GROUP = "newsdesk.commands"

# Libraries whose INFO chatter (database migrations, say) is not for the user's screen.
_QUIET_LOGGERS = ("mlflow", "alembic")
# Commands that do not start by talking to the tracking server: `sync` gives the store its own
# patience (--patience), `server` starts one, `ui` serves a local store.
_NO_FIRST_CONTACT = frozenset({"sync", "server", "ui"})
# MLflow draws a progress bar for every local file it copies into a model; in a log that is
# a line of carriage returns per copy. This is the only switch MLflow offers, and the command
# line (the application, never the library) sets it as a default the user can override.
_ARTIFACT_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# MLflow sets its loggers' level when it is imported, which a command now does only when it
# needs MLflow (after `main` has run): the level is given to it through its own variable.
_MLFLOW_LOG_LEVEL_ENV = "MLFLOW_LOGGING_LEVEL"


def _version() -> str:
    try:
        return metadata.version("newsdesk")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class CommandParser(argparse.ArgumentParser):
    """Every command's parser shows each option's default in its help, and a usage mistake
    is one line (argparse's own error prints the whole usage block above it)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="newsdesk", description="Train headline classifiers and track them in MLflow."
    )
    parser.add_argument("--version", action="version", version=f"newsdesk {_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show tracebacks and library logs (also: {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )
    for add_commands in _plugin_commands():
        add_commands(sub)
    add_sync_command(sub)
    add_dashboard_commands(sub)
    add_server_command(sub)
    return parser


def _plugin_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """The command-adding functions of the installed `newsdesk.commands` entry points, in
    name order so that `--help` lists them the same way every time."""
    found = sorted(metadata.entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name)
    return [entry.load() for entry in found]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Usage errors end in one line and exit 2, other failures in one line
    and exit 1 (`--debug` shows the traceback), a signal N in 128 + N."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `--nproc` runs it N times
    resolve_experiment(args)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args.debug = debug  # the commands see the flag or the environment variable alike
    if not debug:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ.setdefault(_MLFLOW_LOG_LEVEL_ENV, "WARNING")
        os.environ.setdefault(_ARTIFACT_BAR_ENV, "false")
    try:
        if args.command not in _NO_FIRST_CONTACT and hasattr(args, "tracking_uri"):
            from tracker.store.first_contact import check_server  # MLflow: only when it runs

            check_server(resolve_store(args.tracking_uri, create=False).tracking_uri)
        # SIGTERM anywhere in a command (data preparation, evaluation, an upload) ends it
        # like Ctrl-C: an open run ends KILLED and the command exits 143 with one line. The
        # training loop and the logger install their own handlers while they run.
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure ends in one line
        return report(args.command, exc, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
