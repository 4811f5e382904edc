"""`newsdesk server`: an MLflow tracking server in the foreground, on a private PostgreSQL
or any database; SIGTERM and Ctrl-C stop the server and the database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tracker.cli.errors import UsageError
from tracker.server.mlflow_server import (
    BACKEND_STORE_ENV,
    ServerConfig,
    ServerError,
    TrackingServer,
)
from tracker.server.postgres import LocalPostgres, PostgresConfig, PostgresError
from tracker.store.location import DEFAULT_TRACKING_URI, redact, resolve_store


def cmd_server(args: argparse.Namespace) -> int:
    """Run `mlflow server` in the foreground, optionally on a private local PostgreSQL.

    Ctrl-C or SIGTERM at any moment, the start included, stops what was started: the server
    and then the database; nothing is left running.
    """
    if args.local_postgres and args.backend_store_uri:
        raise UsageError("give --backend-store-uri or --local-postgres, not both")
    postgres = (
        LocalPostgres(PostgresConfig(directory=Path(args.local_postgres)))
        if args.local_postgres
        else None
    )
    server: TrackingServer | None = None
    try:
        if postgres is not None:
            postgres.start()
            print(f"PostgreSQL {postgres.datadir} on 127.0.0.1:{postgres.port}")
            backend = postgres.create_database("mlflow")
        else:
            given = args.backend_store_uri or os.environ.get(BACKEND_STORE_ENV)
            backend = resolve_store(given or DEFAULT_TRACKING_URI).tracking_uri
        config = ServerConfig(
            backend_store_uri=backend,
            artifacts_destination=Path(args.artifacts_destination),
            host=args.host,
            port=args.port,
            workers=args.workers,
            auth=args.auth,
        )
        server = TrackingServer(config)
        print(
            f"starting mlflow server on {config.url} (store {redact(backend)}, "
            f"artifacts {config.artifacts_destination})"
        )
        server.start()
        print(
            f"ready: export MLFLOW_TRACKING_URI={config.url}"
            + ("  (and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)" if args.auth else "")
            + "; Ctrl-C stops it"
        )
        return server.proc.wait() if server.proc else 1
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the command line raises it as one)
        print("stopping the server" + (" and PostgreSQL" if postgres else ""))
        return 0
    except (PostgresError, ServerError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        if server is not None:
            server.stop()
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
