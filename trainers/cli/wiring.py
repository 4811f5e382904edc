"""The one place that turns a command's request into a logger and a checkpointer.

Training code receives a `MetricLogger` and a `Checkpointer` and never builds either; the
commands (train, demo, resume, sweep) build them here from their `Tracking` and checkpoint
folder, so which store a run goes to, where its resume state lives and how that location is
recorded are decided once. The tracking URI is passed explicitly to every client: nothing here
reads or sets MLflow's process-wide state.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tracker import TrainingLogger, schema
from tracker.store.location import default_checkpoint_dir, resolve_store
from trainers.cli.requests import Parallel, Tracking
from trainers.loop import TrainingDiverged, TrainingInterrupted
from trainers.state import STATIC_KEYS, Checkpointer, plain
from trainers.threads import ThreadChoice, ThreadGovernor, choose_for_process

_log = logging.getLogger(__name__)


def open_logger(
    tracking: Tracking,
    *,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
) -> TrainingLogger:
    """A `TrainingLogger` on the store and experiment `tracking` names (a new run, or
    `run_id` continued; `experiment` overrides the request's, for a run found by id)."""
    return TrainingLogger(
        experiment or tracking.experiment,
        run_name=run_name,
        tracking_uri=tracking.tracking_uri,
        tags=tags,
        run_id=run_id,
        parent_run_id=parent_run_id,
        system_metrics_interval_s=tracking.system_metrics_interval_s,
    )


THREADS_PARAM, THREADS_FROM_PARAM = "torch.threads", "torch.threads_from"


def use_threads(parallel: Parallel) -> ThreadChoice:
    """Choose torch's compute threads for this process (`trainers.threads`) and apply them."""
    choice = choose_for_process(parallel.threads)
    torch.set_num_threads(choice.threads)
    return choice


def thread_governor(choice: ThreadChoice) -> ThreadGovernor:
    """Lowers and restores the count while a training runs (a fixed count stays as it is)."""
    return ThreadGovernor(choice, torch.set_num_threads)


def log_threads(log: TrainingLogger, choice: ThreadChoice) -> None:
    """Record the choice with a new run, so that a slow run can be told from a starved one;
    changes during the training are the metric `perf/threads`."""
    adjusted = ", lowered while other processes keep them busy" if choice.adjustable else ""
    log.log_params({THREADS_PARAM: choice.threads, THREADS_FROM_PARAM: choice.reason + adjusted})


def checkpoint_dir(tracking_uri: str | None, given: Path | None) -> Path:
    """`given` (--checkpoint-dir), else `checkpoints/` beside the SQLite store (else under
    mlruns/)."""
    return given if given is not None else default_checkpoint_dir(resolve_store(tracking_uri))


def new_checkpointer(
    log: TrainingLogger,
    folder: Path,
    model_name: str,
    configs: tuple[Any, Any, Any],
    vocab_fingerprint: str,
) -> Checkpointer:
    """The resume checkpointer of a new run in `folder`, recorded as a run tag so `newsdesk
    resume` finds it. `configs` are the model, data and train configs; they are written into
    every checkpoint."""
    model_config, data_config, train_config = configs
    identity = (log.run_id, model_name, *map(plain, configs), vocab_fingerprint)
    checkpointer = Checkpointer(
        path=folder / log.run_id / "resume.pt",
        static=dict(zip(STATIC_KEYS, identity, strict=True)),
        every_steps=train_config.checkpoint_every,
        interval_s=train_config.checkpoint_interval_s,
    )
    log.set_tags({schema.RESUME_CHECKPOINT_TAG: str(checkpointer.path)})
    return checkpointer


def forget_resume_checkpoint(log: TrainingLogger) -> None:
    """After a run finished (its resume checkpoint removed, its logger closed): remove the
    tag that pointed at the checkpoint, so a finished run names no file that is gone. A
    store that refuses now leaves the tag; `newsdesk resume` then says the file is missing."""
    try:
        log.client.delete_tag(log.run_id, schema.RESUME_CHECKPOINT_TAG)
    except Exception as exc:  # noqa: BLE001 - the run is stored and finished either way
        _log.warning("run %s keeps its resume-checkpoint tag: %s", log.run_id, exc)


@contextmanager
def report_interruption(run_id: str, checkpointer: Checkpointer | None = None) -> Iterator[None]:
    """On SIGINT/SIGTERM or a failure, say how to go on from the checkpoint, then re-raise
    (not after a divergence, which a resume would repeat)."""
    try:
        yield
    except TrainingInterrupted as exc:
        hint = f"; continue with: newsdesk resume {run_id}" if exc.checkpoint else ""
        print(f"newsdesk: run {run_id} {exc}{hint}", file=sys.stderr)
        raise
    except TrainingDiverged:
        raise  # resuming would diverge again: the command says to lower the learning rate
    except Exception:
        if checkpointer is not None and checkpointer.path.is_file():
            print(
                f"newsdesk: run {run_id} failed at step {checkpointer.saved_step} or later; "
                f"once the cause is fixed, continue with: newsdesk resume {run_id}",
                file=sys.stderr,
            )
        raise
