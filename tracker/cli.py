"""Tracker-side subcommands of `newsdesk` (sync; later compare, promote, ui)."""

from __future__ import annotations

import argparse
import sys
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
    add_dashboard_commands(sub)


def _ranked_table(frame, metric: str, mode: str):
    columns = {
        "model": "model",
        "run_name": "run",
        "test/acc": "test acc",
        "test/macro_f1": "macro F1",
        "best_val/acc": "best val acc",
        "steps": "steps",
        "perf/wall_time_s": "wall s",
        "perf/samples_per_s": "samples/s",
    }
    present = [c for c in ["run_id", *columns] if c in frame.columns]
    table = frame[present].copy()
    if metric in frame.columns and metric not in present:
        table[metric] = frame[metric]
    table = table.sort_values(metric, ascending=(mode == "min"), na_position="last")
    return table.rename(columns=columns).reset_index(drop=True)


def cmd_compare(args: argparse.Namespace) -> int:
    from tracker.compare import metric_history, per_class_frame, runs_frame
    from tracker.plots import compare_figure

    frame = runs_frame(args.experiment, tracking_uri=args.tracking_uri)
    if frame.empty:
        raise UsageError(f"experiment {args.experiment!r} has no runs")
    if args.metric not in frame.columns:
        known = sorted(c for c in frame.columns if "/" in c)
        raise UsageError(
            f"no run in {args.experiment!r} has metric {args.metric!r}; known: {', '.join(known)}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = _ranked_table(frame, args.metric, args.mode)
    frame.to_csv(out / "compare.csv", index=False)
    history = metric_history(
        frame["run_id"].tolist(),
        ["train/loss", "val/loss", "val/acc"],
        tracking_uri=args.tracking_uri,
    )
    per_class = per_class_frame(frame["run_id"].tolist(), tracking_uri=args.tracking_uri)
    fig = compare_figure(frame, history, args.metric, per_class)
    fig.savefig(out / "compare.png", dpi=110)
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format
    ):
        print(table.drop(columns=["run_id"]).to_string(index=False))
    print(f"wrote {out / 'compare.csv'} and {out / 'compare.png'}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from tracker.registry import promote

    result = promote(
        args.experiment,
        metric=args.metric,
        mode=args.mode,
        model_name=args.model_name,
        dry_run=args.dry_run,
        tracking_uri=args.tracking_uri,
    )
    print(result.message)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tracker.predict import default_model_uri, load_model, predict, read_headlines

    if args.file:
        texts = read_headlines(Path(args.file))
    elif args.texts:
        texts = list(args.texts)
    else:
        raise UsageError("give headlines as arguments or --file FILE")
    model = load_model(args.model_uri or default_model_uri(args.experiment), args.tracking_uri)
    frame = predict(model, texts, top_k=args.top_k)
    if args.file:
        target = Path(args.out) if args.out else None
        frame.to_csv(target if target else sys.stdout, index=False)
        if target:
            print(f"wrote {len(frame)} predictions to {target}")
        return 0
    for row in frame.itertuples(index=False):
        print(f"{row.label}\t{row.probability:.4f}\t{row.text}")
        if args.top_k > 1:
            print(f"\ttop {args.top_k}: {row.top_k}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    uri = resolve_store(args.tracking_uri).tracking_uri
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} (store {uri}); Ctrl-C stops it")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def cmd_server(args: argparse.Namespace) -> int:
    """Run `mlflow server` in the foreground, optionally on a private local PostgreSQL."""
    from tracker.postgres import LocalPostgres, PostgresConfig, PostgresError
    from tracker.server import ServerConfig, ServerError, TrackingServer

    if args.local_postgres and args.backend_store_uri:
        raise UsageError("give --backend-store-uri or --local-postgres, not both")
    import signal

    def _stop(signum, frame):  # SIGTERM stops the server and the database like Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    postgres = None
    try:
        if args.local_postgres:
            postgres = LocalPostgres(PostgresConfig(directory=Path(args.local_postgres))).start()
            backend = postgres.create_database("mlflow")
        else:
            backend = resolve_store(args.backend_store_uri).tracking_uri
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
        shown = backend.split("@")[-1] if postgres else backend  # never print the password
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
        help="database URI, e.g. postgresql://user:pw@host/db (default: the embedded SQLite store)",
    )
    server.add_argument(
        "--local-postgres",
        metavar="DIR",
        default=None,
        help="run a private PostgreSQL cluster in DIR (created on first use) as the store",
    )
    server.add_argument("--artifacts-destination", default="mlruns/artifacts")
    server.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)"
    )
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--workers", type=int, default=2)
    server.add_argument(
        "--auth",
        action="store_true",
        help="MLflow basic auth; the admin password comes from $MLFLOW_AUTH_ADMIN_PASSWORD",
    )
    server.set_defaults(func=cmd_server)


def add_dashboard_commands(sub: argparse._SubParsersAction) -> None:
    add_server_command(sub)
    compare = sub.add_parser("compare", help="rank runs, write compare.csv and compare.png")
    add_tracking_uri(compare)
    compare.add_argument("--experiment", default="newsdesk")
    compare.add_argument("--metric", default="test/acc")
    compare.add_argument("--mode", choices=["max", "min"], default="max")
    compare.add_argument("--out", default=".")
    compare.set_defaults(func=cmd_compare)

    prom = sub.add_parser("promote", help="register the best run's model as champion")
    add_tracking_uri(prom)
    prom.add_argument("--experiment", default="newsdesk")
    prom.add_argument("--metric", default="test/acc")
    prom.add_argument("--mode", choices=["max", "min"], default="max")
    prom.add_argument("--model-name", default=None, help="default: <experiment>-classifier")
    prom.add_argument("--dry-run", action="store_true")
    prom.set_defaults(func=cmd_promote)

    pred = sub.add_parser("predict", help="predict topics of raw headlines")
    add_tracking_uri(pred)
    pred.add_argument("texts", nargs="*", metavar="TEXT")
    pred.add_argument(
        "--model-uri", default=None, help="default: models:/<experiment>-classifier@champion"
    )
    pred.add_argument("--experiment", default="newsdesk")
    pred.add_argument("--top-k", type=int, default=1)
    pred.add_argument("--file", default=None, help="one headline per line; writes CSV")
    pred.add_argument("--out", default=None, help="CSV path for --file (default: stdout)")
    pred.set_defaults(func=cmd_predict)

    ui = sub.add_parser("ui", help="start the MLflow UI on the store, bound to 127.0.0.1")
    add_tracking_uri(ui)
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.set_defaults(func=cmd_ui)
