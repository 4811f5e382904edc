"""Options shared by several commands, and the help format every command uses.

MLflow's conventions hold everywhere: `--tracking-uri` over `MLFLOW_TRACKING_URI` over the
embedded store, and `--experiment` over `MLFLOW_EXPERIMENT_NAME` over "newsdesk".
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from tracker.schema import DEFAULT_EXPERIMENT
from tracker.store.location import redact, resolve_store

EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where the help text already says it (defaults
    that come from the environment) and for flags, whose default is always off."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


class EpilogHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """`HelpFormatter` that keeps the epilog's lines as written (a table of settings)."""


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)",
    )


def add_experiment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment",
        default=None,
        help=f"MLflow experiment (default: ${EXPERIMENT_ENV}, else {DEFAULT_EXPERIMENT})",
    )


def resolve_experiment(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> None:
    """Fill in `args.experiment` when the command has the option and it was not given."""
    if getattr(args, "experiment", "") is None:
        env = os.environ if environ is None else environ
        args.experiment = env.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT


def is_server_uri(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def command_name() -> str:
    """How the user started newsdesk (`.venv/bin/newsdesk` after `make demo`), for hints
    that can be pasted back into the shell."""
    started = sys.argv[0] if sys.argv else ""
    return started if Path(started).name == "newsdesk" else "newsdesk"


def dashboard_hint(tracking_uri: str | None) -> str:
    """How to open newsdesk's dashboard on the runs just made, and its address.

    `tracking_uri` is the `--tracking-uri` the user gave (None: environment or default); a
    tracking server's own MLflow UI is named too.
    """
    resolved = resolve_store(tracking_uri, create=False).tracking_uri
    option = f" --tracking-uri {redact(resolved)}" if tracking_uri else ""
    hint = f"open the dashboard: {command_name()} ui{option}   then http://127.0.0.1:5000/"
    if is_server_uri(resolved):
        hint += f"  (MLflow UI: {redact(resolved)})"
    return hint
