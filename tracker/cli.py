"""Tracker-side subcommands of `newsdesk` (sync; later compare, promote, ui)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker.spool import SpoolError
from tracker.store import default_spool_dir, resolve_store
from tracker.sync import sync_spools


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)",
    )


def cmd_sync(args: argparse.Namespace) -> int:
    location = resolve_store(args.tracking_uri)
    directory = Path(args.spool_dir) if args.spool_dir else default_spool_dir(location)
    try:
        report = sync_spools(directory, tracking_uri=args.tracking_uri)
    except SpoolError as exc:
        raise UsageError(str(exc)) from None
    if not report.files:
        print(f"nothing to sync in {directory}")
    else:
        print(
            f"synced {report.points} metric points of {len(report.runs)} run(s) "
            f"from {len(report.files)} spool file(s) in {directory}"
        )
    return 0


def add_tracker_commands(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser("sync", help="write spooled points to their tracking store, once")
    add_tracking_uri(sync)
    sync.add_argument("--spool-dir", default=None, help="default: spool/ beside the SQLite store")
    sync.set_defaults(func=cmd_sync)
