"""The `newsdesk` command line: one entry point for training and tracking commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow.exceptions import MlflowException

from tracker.cli import UsageError, add_tracker_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk", description="Train headline classifiers and track them in MLflow."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_tracker_commands(sub)
    from trainers.commands import add_trainer_commands

    add_trainer_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user mistakes end in one line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, FileNotFoundError, ValueError) as exc:
        print(f"newsdesk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        print(f"newsdesk {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The machine, not the user: a full disk, an unreachable or broken artifact store.
        print(f"newsdesk {args.command}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(
            f"newsdesk {args.command}: interrupted (an open run is marked KILLED)", file=sys.stderr
        )
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM


if __name__ == "__main__":
    sys.exit(main())
