"""`newsdesk server`: an MLflow tracking server in the foreground, on a private PostgreSQL
or any database; SIGTERM and Ctrl-C stop the server and the database."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from tracker.server.mlflow_server import (
    BACKEND_STORE_ENV,
    ServerConfig,
    ServerError,
    TrackingServer,
)
from tracker.server.postgres import LocalPostgres, PostgresConfig, PostgresError
from tracker.store.location import DEFAULT_TRACKING_URI, redact, resolve_store
from trainers.cli.errors import UsageError


def cmd_server(args: argparse.Namespace) -> int:
    """Run `mlflow server` in the foreground, optionally on a private local PostgreSQL."""
    if args.local_postgres and args.backend_store_uri:
        raise UsageError("give --backend-store-uri or --local-postgres, not both")

    def _stop(signum, frame):  # SIGTERM stops the server and the database like Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    postgres = None
    try:
        if args.local_postgres:
            postgres = LocalPostgres(PostgresConfig(directory=Path(args.local_postgres))).start()
            backend = postgres.create_database("mlflow")
        else:
            given = args.backend_store_uri or os.environ.get(BACKEND_STORE_ENV)
            backend = resolve_store(given or DEFAULT_TRACKING_URI).tracking_uri
        artifacts = Path(args.artifacts_destination)
        config = ServerConfig(
            backend_store_uri=backend,
            artifacts_destination=artifacts,
            host=args.host,
            port=args.port,
            workers=args.workers,
            auth=args.auth,
        )
        server = TrackingServer(config)
        if postgres is not None:
            print(f"PostgreSQL {postgres.datadir} on 127.0.0.1:{postgres.port}")
        shown = redact(backend)  # never print a password
        print(f"starting mlflow server on {config.url} (store {shown}, artifacts {artifacts})")
        server.start()
        print(
            f"ready: export MLFLOW_TRACKING_URI={config.url}"
            + ("  (and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)" if args.auth else "")
            + "; Ctrl-C stops it"
        )
        try:
            return server.proc.wait() if server.proc else 1
        except KeyboardInterrupt:
            print("stopping the server" + (" and PostgreSQL" if postgres else ""))
            server.stop()
            return 0
    except (PostgresError, ServerError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if postgres is not None:
            postgres.stop()


def add_server_command(sub: argparse._SubParsersAction) -> None:
    server = sub.add_parser(
        "server", help="start an MLflow tracking server (127.0.0.1, artifacts served)"
    )
    server.add_argument(
        "--backend-store-uri",
        default=None,
        help=f"database URI, e.g. postgresql://user:pw@host/db; prefer ${BACKEND_STORE_ENV}, "
        "which keeps the password out of `ps` (default: that variable, else the embedded SQLite "
        "store)",
    )
    server.add_argument(
        "--local-postgres",
        metavar="DIR",
        default=None,
        help="store runs in a private PostgreSQL cluster in DIR, created on first use "
        "(default: none)",
    )
    server.add_argument(
        "--artifacts-destination", default="mlruns/artifacts", help="where artifacts are kept"
    )
    server.add_argument(
        "--host", default="127.0.0.1", help="bind address (127.0.0.1: this machine only)"
    )
    server.add_argument("--port", type=int, default=5000, help="port of the server")
    server.add_argument("--workers", type=int, default=2, help="server worker processes")
    server.add_argument(
        "--auth",
        action="store_true",
        help="MLflow basic auth; the admin password comes from $MLFLOW_AUTH_ADMIN_PASSWORD",
    )
    server.set_defaults(func=cmd_server)
