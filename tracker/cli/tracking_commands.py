"""The tracker's everyday commands: sync, compare, promote, predict, ui.

They need only the core install (MLflow, pandas, matplotlib): no torch import happens unless a
model is loaded for prediction.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker import schema
from tracker.cli.errors import UsageError
from tracker.cli.options import add_experiment, add_tracking_uri, is_server_uri
from tracker.shipping.config import WriterConfig
from tracker.store.location import (
    default_spool_dir,
    existing_store,
    redact,
    resolve_store,
    without_credentials,
)

# How long `sync` retries a store that takes nothing: as long as a closing logger waits.
SYNC_PATIENCE_S = WriterConfig.close_timeout_s


def cmd_sync(args: argparse.Namespace) -> int:
    from tracker.shipping.sync import sync_spools

    location = resolve_store(args.tracking_uri)
    directory = Path(args.spool_dir) if args.spool_dir else default_spool_dir(location)
    report = sync_spools(directory, tracking_uri=args.tracking_uri, patience_s=args.patience)
    for line in report.set_aside:
        print(f"newsdesk sync: {line}", file=sys.stderr)
    for run_id in report.kept_status:
        print(
            f"newsdesk sync: run {run_id} ended later than its spool says; its status is kept",
            file=sys.stderr,
        )
    for run_id in report.busy:
        print(
            f"newsdesk sync: run {run_id} is still being shipped by its own shipper; skipped",
            file=sys.stderr,
        )
    if not report.files:
        print(f"nothing to sync in {directory}")
    else:
        print(
            f"synced {report.points} metric points of {len(report.runs)} run(s) "
            f"from {len(report.files)} run log(s) or spool file(s) in {directory}"
        )
    return 1 if report.set_aside else 0


def add_sync_command(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser("sync", help="write spooled points to their tracking store, once")
    add_tracking_uri(sync)
    sync.add_argument(
        "--spool-dir", default=None, help="spool folder (default: spool/ beside the SQLite store)"
    )
    sync.add_argument(
        "--patience",
        type=float,
        default=SYNC_PATIENCE_S,
        metavar="SECONDS",
        help="how long to keep retrying a store that takes nothing before exiting 1 "
        f"(default: {SYNC_PATIENCE_S:.0f})",
    )
    sync.set_defaults(func=cmd_sync)


def _ranked_table(frame, metric: str, mode: str):
    """The printed ranking: one `run` column (its name, and its model where the name does
    not say it), the test and training metrics newsdesk's runs have, the ranking metric."""
    frame = frame.copy()  # `runs_frame` always has `model` (None without the tag)
    frame["run_name"] = [
        f"{name} ({kind})" if isinstance(kind, str) and kind not in str(name) else name
        for name, kind in zip(frame["run_name"], frame["model"], strict=True)
    ]
    columns = {
        "run_name": "run",
        "trials": "trials",
        "best_trial": "best trial",
        schema.TEST_ACC: "test acc",
        schema.TEST_MACRO_F1: "macro F1",
        schema.BEST_VAL_ACC: "best val acc",
        schema.STEPS: "steps",
        schema.WALL_TIME_S: "wall s",
        schema.SAMPLES_PER_S: "samples/s",
    }
    present = [c for c in ["run_id", *columns] if c in frame.columns]
    table = frame[present].copy()
    if metric in frame.columns and metric not in present:
        table[metric] = frame[metric]
    table = table.sort_values(metric, ascending=(mode == "min"), na_position="last")
    return table.rename(columns=columns).reset_index(drop=True)


def _print_seed_groups(frame) -> None:
    """Per seed group (`train --seeds N`): mean ± std, min and max of the test metrics."""
    from tracker.dashboard.compare import seed_groups

    metrics = [schema.TEST_ACC, schema.TEST_MACRO_F1]
    groups = seed_groups(frame, metrics)
    if groups.empty:
        return
    print("\nseed groups (mean ± std over the runs; min to max):")
    for row in groups.to_dict("records"):
        cells = []
        for metric in metrics:
            if f"{metric} mean" in row:
                std = row[f"{metric} std"]
                spread = f" ± {std:.4f}" if std == std else ""  # NaN for a single run
                cells.append(
                    f"{metric} {row[f'{metric} mean']:.4f}{spread} "
                    f"({row[f'{metric} min']:.4f} to {row[f'{metric} max']:.4f})"
                )
        print(f"  {row['model']} ({row['runs']} runs, {row['seed_group']}): {'; '.join(cells)}")


def _versus_best(table, frame, args: argparse.Namespace) -> list[str]:
    """Per ranked row, whether it is tied with the best run on the same test examples (a
    sweep's row is represented by its best trial)."""
    from tracker.dashboard.compare import client_for
    from tracker.dashboard.paired import versus_best

    trials = dict(
        zip(frame["run_id"], frame.get("best_trial_run_id", frame["run_id"]), strict=True)
    )
    ids = [trials.get(r) if isinstance(trials.get(r), str) else r for r in table["run_id"]]
    return versus_best(client_for(args.tracking_uri), ids, args.alpha)


def _curves_frame(every, collapsed):
    """The runs whose curves the figure draws: plain runs, and each sweep's best trial."""
    import pandas as pd

    best = collapsed.get("best_trial_run_id", pd.Series(dtype=object)).dropna()
    is_sweep = collapsed["run_id"].isin(every["parent_run_id"].dropna())
    return pd.concat(
        [collapsed[~is_sweep], every[every["run_id"].isin(set(best))]], ignore_index=True
    )


def _choose_ranking(args: argparse.Namespace, frame) -> None:
    """Fill in `args.metric` and `args.mode` for compare, or stop with the metrics there are."""
    from tracker.dashboard.compare import metric_columns, rank_metric

    known = ", ".join(metric_columns(frame)) or "none"
    if args.metric is None:
        found = rank_metric(frame)
        if found is None:
            raise UsageError(
                f"no run in {args.experiment!r} has a test or validation accuracy or loss to "
                f"rank by; name one with --metric (known: {known})"
            )
        args.metric, mode = found
        args.mode = args.mode or mode
        if args.metric != schema.DEFAULT_RANK_METRIC:
            better = "higher" if args.mode == "max" else "lower"
            print(f"ranking by {args.metric} ({better} is better; --metric names another)")
        return
    args.mode = args.mode or dict(schema.RANK_PREFERENCE).get(args.metric, "max")
    if args.metric not in frame.columns:
        raise UsageError(
            f"no run in {args.experiment!r} has metric {args.metric!r}; known: {known}"
        )


def _shown(table):
    """`table` as text cells: scores with 4 decimals, seconds with 1, rates and counts as
    integers, a missing value as "-"."""
    shown = table.copy()
    for column, formatter in _formatters(table).items():
        shown[column] = table[column].map(formatter).astype(object)
    return shown.fillna("-")


def _formatters(table) -> dict:

    import pandas as pd

    def fixed(decimals: int):
        return lambda value: "-" if pd.isna(value) else f"{value:.{decimals}f}"

    out = {}
    for column in table.columns:
        if column == "wall s":
            out[column] = fixed(1)
        elif column in ("samples/s", "steps", "trials"):
            out[column] = fixed(0)
        elif table[column].dtype.kind == "f":
            out[column] = fixed(4)
    return out


def cmd_paired(args: argparse.Namespace) -> int:
    from tracker.dashboard.compare import client_for
    from tracker.dashboard.paired import compare_runs

    run_a, run_b = args.paired
    result = compare_runs(client_for(args.tracking_uri), run_a, run_b)
    verdict = "significant" if result.significant(args.alpha) else "not significant"
    print(f"{run_a} against {run_b}: {result.describe()}; {verdict} at alpha {args.alpha:g}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.paired:
        return cmd_paired(args)

    from tracker.dashboard.compare import (
        collapse_sweeps,
        curve_history,
        per_class_frame,
        runs_frame,
    )
    from tracker.dashboard.plots import compare_figure

    every = runs_frame(args.experiment, tracking_uri=args.tracking_uri, parent=args.parent)
    if every.empty:
        where = f"under run {args.parent}" if args.parent else f"in {args.experiment!r}"
        raise UsageError(f"no runs {where}")
    if args.parent:
        frame = plot_frame = every  # one sweep's trials
    else:
        frame = collapse_sweeps(every, args.metric, args.mode)  # parents with their best trial
        # The figure draws curves: a sweep is drawn as its best trial.
        plot_frame = _curves_frame(every, frame)
    _choose_ranking(args, frame)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = _ranked_table(frame, args.metric, args.mode)
    table["vs best"] = _versus_best(table, frame, args)
    frame = frame.merge(table[["run_id", "vs best"]], on="run_id", how="left")
    frame.to_csv(out / "compare.csv", index=False)
    history = curve_history(plot_frame["run_id"].tolist(), tracking_uri=args.tracking_uri)
    per_class = per_class_frame(plot_frame["run_id"].tolist(), tracking_uri=args.tracking_uri)
    fig = compare_figure(plot_frame, history, args.metric, per_class)
    fig.savefig(out / "compare.png", dpi=110)

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(_shown(table.drop(columns=["run_id"])).to_string(index=False))
    _print_seed_groups(every)
    print(f"wrote {out / 'compare.csv'} and {out / 'compare.png'}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from tracker.dashboard.registry import promote

    result = promote(
        args.experiment,
        metric=args.metric,
        mode=args.mode,
        model_name=args.model_name,
        dry_run=args.dry_run,
        tracking_uri=args.tracking_uri,
        alpha=args.alpha,
        force=args.force,
        run_id=args.run,
    )
    print(result.message)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tracker.dashboard.predict import (
        default_model_uri,
        load_for_prediction,
        predict,
        read_headlines,
    )

    if args.file:
        texts = read_headlines(Path(args.file))
    elif args.texts:
        texts = list(args.texts)
    else:
        raise UsageError("give headlines as arguments or --file FILE")
    # MLflow's check of the model's requirements against the installed packages costs as
    # much as a large prediction; the model's code is this package's own, so it runs with
    # --debug only (which also loads the model through MLflow rather than the fast path).
    model = load_for_prediction(
        args.model_uri or default_model_uri(args.experiment),
        args.tracking_uri,
        check_requirements=args.debug,
    )
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
    """newsdesk's dashboard on the store, in the foreground, in this one process; with
    `--mlflow-port`, the MLflow UI beside it (its own process group), which the dashboard's
    runs link to. Ctrl-C or SIGTERM stops everything it started."""
    from tracker.board.app import BoardConfig
    from tracker.board.serve import serve
    from tracker.server.mlflow_server import ServerError
    from tracker.server.mlflow_ui import MlflowUi, UiConfig, runs_page
    from tracker.server.ports import bind_port

    uri = existing_store(args.tracking_uri)
    mlflow: MlflowUi | None = None
    link = None
    if is_server_uri(uri):
        link = without_credentials(uri)  # the tracking server serves the MLflow UI itself
    elif args.mlflow_port is not None:
        mlflow = MlflowUi(UiConfig(uri, host=args.host, port=args.mlflow_port, workers=1))
    sock = bind_port(args.host, args.port)
    try:
        if mlflow is not None:
            mlflow.start()
            link = mlflow.config.url
        page = f"http://{args.host}:{args.port}/"
        print(f"newsdesk dashboard: {page}  (store {redact(uri)}); Ctrl-C stops it", flush=True)
        if link:  # opening on the experiment's runs, not MLflow's GenAI overview
            runs = runs_page(link, _experiment_id(uri, args.experiment))
            print(f"MLflow UI: {runs}", flush=True)
        serve(BoardConfig(uri, experiment=args.experiment, mlflow_ui=link), sock)
        return 0
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the command line raises it as one)
        return 0
    except ServerError as exc:
        raise OSError(str(exc)) from None
    finally:
        sock.close()
        if mlflow is not None:
            mlflow.stop()


def _experiment_id(uri: str, name: str) -> str | None:
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else None


def _add_ranking(parser: argparse.ArgumentParser, *, found: bool = False) -> None:
    """The store, the experiment, and the metric and mode that rank its runs. With `found`
    (compare), no metric named means the first of `schema.RANK_PREFERENCE` the runs have, so
    that runs of any trainer (Hugging Face's `eval_accuracy`, say) rank without options;
    promotion names its rule explicitly."""
    add_tracking_uri(parser)
    add_experiment(parser)
    if found:
        parser.add_argument(
            "--metric",
            default=None,
            help=f"metric to rank runs by (default: {schema.DEFAULT_RANK_METRIC}, else the "
            "first the runs have of test and validation accuracy and loss, under newsdesk's, "
            "Hugging Face's or Lightning's usual names)",
        )
        parser.add_argument(
            "--mode",
            choices=["max", "min"],
            default=None,
            help="whether higher or lower is better (default: max, min for the losses found "
            "by default)",
        )
        return
    parser.add_argument(
        "--metric", default=schema.DEFAULT_RANK_METRIC, help="metric to rank runs by"
    )
    parser.add_argument(
        "--mode", choices=["max", "min"], default="max", help="whether higher or lower is better"
    )


def add_dashboard_commands(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="rank runs, write compare.csv and compare.png")
    _add_ranking(compare, found=True)
    compare.add_argument("--out", default=".", help="folder for compare.csv and compare.png")
    compare.add_argument(
        "--parent",
        default=None,
        metavar="RUN_ID",
        help="list the runs nested under this run (a sweep's trials); default: every run, "
        "with a sweep shown as its parent and best trial",
    )
    compare.add_argument(
        "--paired",
        nargs=2,
        default=None,
        metavar=("RUN_A", "RUN_B"),
        help="test two runs against each other on the same test examples (McNemar's exact "
        "test and a bootstrap interval of the accuracy difference) instead of ranking "
        "(default: rank every run)",
    )
    compare.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level: runs whose difference from the best is not significant at "
        "it are marked tied",
    )
    compare.set_defaults(func=cmd_compare)

    prom = sub.add_parser("promote", help="register the best run's model as champion")
    _add_ranking(prom)
    prom.add_argument(
        "--model-name", default=None, help="registered model (default: <experiment>-classifier)"
    )
    prom.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    prom.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="the champion moves only when the challenger is significantly better at this "
        "level (McNemar's exact test on the same test examples)",
    )
    prom.add_argument(
        "--force",
        action="store_true",
        help="promote a challenger that beats the champion on --metric even without "
        "significance or a comparison (recorded on the version)",
    )
    prom.add_argument(
        "--run",
        default=None,
        metavar="RUN_ID",
        help="the challenger (default: the best run by --metric)",
    )
    prom.set_defaults(func=cmd_promote)

    pred = sub.add_parser(
        "predict",
        help="predict the labels of raw headlines with a registered model (the classes it was "
        "trained on: the demo's sentiment, THUCNews's topics)",
    )
    add_tracking_uri(pred)
    pred.add_argument("texts", nargs="*", metavar="TEXT", help="headlines to classify")
    pred.add_argument(
        "--model-uri",
        default=None,
        help="model (default: models:/<experiment>-classifier@champion)",
    )
    add_experiment(pred)
    pred.add_argument("--top-k", type=int, default=1, help="labels to show per headline")
    pred.add_argument(
        "--file", default=None, help="one headline per line; writes CSV (default: none)"
    )
    pred.add_argument("--out", default=None, help="CSV path for --file (default: stdout)")
    pred.set_defaults(func=cmd_predict)

    ui = sub.add_parser(
        "ui", help="newsdesk's live dashboard on the store, bound to 127.0.0.1 (read-only)"
    )
    add_tracking_uri(ui)
    add_experiment(ui)
    ui.add_argument("--port", type=int, default=5000, help="port of the dashboard")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (this machine only)")
    ui.add_argument(
        "--mlflow-port",
        type=int,
        default=None,
        help="also start the MLflow UI on this port (one more process); the dashboard's runs "
        "link to it (default: none; a tracking server's own UI is linked without it)",
    )
    ui.set_defaults(func=cmd_ui)
