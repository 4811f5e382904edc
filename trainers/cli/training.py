"""The work behind `newsdesk train`, `demo` and `resume`: configs from a request, data, runs.

This module loads the training stack (torch and the models); the command definitions import it
only when a training command runs, so the tracking commands work without the trainers extra.
The sweep (`trainers.cli.sweep`) makes its trials' configs and data with `configs_for` and
`prepare`.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from pathlib import Path

from tracker import schema
from tracker.cli.errors import UsageError
from tracker.logger.distributed import NullLogger
from tracker.logger.resume import SkipLogged, find_resumable_run, stored_progress
from tracker.store.access import check_write_access
from trainers.catalogue import model_spec
from trainers.cli.launcher import announce_run
from trainers.cli.overrides import setting_names, typed_overrides, unknown_setting
from trainers.cli.requests import Parallel, ResumeRequest, Settings, TrainRequest
from trainers.cli.wiring import (
    checkpoint_dir,
    forget_resume_checkpoint,
    log_threads,
    new_checkpointer,
    open_logger,
    report_interruption,
    thread_governor,
    use_threads,
)
from trainers.config import DataConfig, data_config_for, train_config_for
from trainers.data.corpus import DataError
from trainers.data.pipeline import PreparedData, prepare_data
from trainers.distributed import Distributed, world_size_from_environment
from trainers.models.registry import make_config
from trainers.reporting import RunOutcome
from trainers.run import run_training
from trainers.state import ResumePoint


def configs_for(settings: Settings, models: tuple[str, ...] | list[str]):
    """Each model's data, train and model configs: its catalogue defaults under `settings`.
    Returns three dicts by model name."""
    data_configs = {name: data_config_for(name, dict(settings.data)) for name in models}
    model_configs = {}
    applied: set[str] = set()
    for name in models:
        config_cls = model_spec(name).config_class()
        fields = {f.name for f in dataclasses.fields(config_cls)}
        mine = {k: v for k, v in settings.model.items() if k in fields}
        applied |= set(mine)
        model_configs[name] = make_config(name, typed_overrides(config_cls, mine, "model"))
    unknown = set(settings.model) - applied
    if unknown:
        known = {name: setting_names(model_spec(name).config_class()) for name in models}
        raise UsageError(unknown_setting(sorted(unknown)[0], "model", known))
    train_configs = {name: train_config_for(name, dict(settings.train)) for name in models}
    return data_configs, train_configs, model_configs


def _join_job(parallel: Parallel) -> Distributed | None:
    """This process's place in a distributed job (None when training alone)."""
    return Distributed.from_environment(parallel.timeout_s)


def prepare(data_config: DataConfig, dist: Distributed | None) -> PreparedData:
    """Tokenize (or read the cache). In a job, rank 0 first, so the others read its cache
    instead of all tokenizing the same corpus at once."""
    if dist is not None and not dist.is_main:
        dist.barrier()
    try:
        prepared = prepare_data(data_config)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if dist is not None and dist.is_main:
        dist.barrier()
    return prepared


def train_models(request: TrainRequest) -> list[tuple[str, str, RunOutcome]]:
    """Train the requested models, one run each (`request.seeds` runs each, grouped by a tag,
    with `--seeds N`); returns (model, run id, outcome) per run, or nothing on the processes
    of a distributed job other than rank 0."""
    models = request.models
    data_configs, train_configs, model_configs = configs_for(request.settings, models)
    threads = use_threads(request.parallel)
    dist = _join_job(request.parallel)
    try:
        if dist is None or dist.is_main:
            # A refused password or a read-only user fails now, not after training.
            check_write_access(request.tracking.tracking_uri, request.tracking.experiment)
        prepared = _prepare_each(data_configs, dist)
        if dist is not None and not dist.is_main:
            for name, seed in _model_seeds(request, models, train_configs):
                if model_spec(name).runner:
                    continue  # fitted by rank 0 alone, by its own runner
                train_config = dataclasses.replace(train_configs[name], seed=seed)
                configs = (model_configs[name], data_configs[name], train_config)
                run_training(
                    name,
                    *configs,
                    prepared[name],
                    NullLogger(),
                    progress=False,
                    dist=dist,
                    governor=thread_governor(threads),
                )
            return []
        _report_skipped(next(iter(prepared.values())))
        groups = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in models}
        return [
            _train_one(
                request,
                name,
                (model_configs, data_configs, train_configs),
                prepared,
                dist,
                threads,
                seed=seed,
                group=groups[name] if request.seeds > 1 else None,
            )
            for name, seed in _model_seeds(request, models, train_configs)
        ]
    finally:
        if dist is not None:
            dist.close()


def _model_seeds(request: TrainRequest, models, train_configs) -> list[tuple[str, int]]:
    """(model, seed) per run to train: each model `request.seeds` times, seeds counting up
    from its configured one."""
    return [
        (name, train_configs[name].seed + offset)
        for name in models
        for offset in range(request.seeds)
    ]


def _prepare_each(
    data_configs: dict[str, DataConfig], dist: Distributed | None
) -> dict[str, PreparedData]:
    """Each model's data; models with the same data settings share one preparation."""
    done: dict[DataConfig, PreparedData] = {}
    for config in data_configs.values():
        if config not in done:
            done[config] = prepare(config, dist)
    return {name: done[config] for name, config in data_configs.items()}


def _train_one(request, name, all_configs, prepared, dist, threads, *, seed, group):
    model_configs, data_configs, train_configs = all_configs
    train_config = dataclasses.replace(train_configs[name], seed=seed)
    configs = (model_configs[name], data_configs[name], train_config)
    tags = {schema.MODEL_TAG: name}
    run_name = name
    if group is not None:
        tags[schema.SEED_GROUP_TAG] = group
        run_name = f"{name}-seed{seed}"
    with open_logger(request.tracking, run_name=run_name, tags=tags) as log:
        announce_run(log.run_id)
        log_threads(log, threads)
        runner = model_spec(name).runner_function()
        if runner is not None:
            outcome = runner(model_configs[name], data_configs[name], prepared[name], log)
        else:
            outcome = _train_neural(request, name, log, configs, prepared[name], dist, threads)
    if runner is None:
        forget_resume_checkpoint(log)
    return _report(name, log.run_id, outcome)


def _train_neural(request: TrainRequest, name, log, configs, prepared, dist, threads) -> RunOutcome:
    folder = checkpoint_dir(request.tracking.tracking_uri, request.checkpoint_dir)
    checkpointer = new_checkpointer(log, folder, name, configs, prepared.vocab.fingerprint)
    with report_interruption(log.run_id, checkpointer):
        return run_training(
            name,
            *configs,
            prepared,
            log,
            progress=not request.quiet,
            checkpointer=checkpointer,
            dist=dist,
            governor=thread_governor(threads),
        )


def _report(name: str, run_id: str, outcome: RunOutcome):
    metrics = outcome.test_metrics
    print(
        f"{name}: run {run_id}  test/acc {metrics[schema.TEST_ACC]:.4f}  "
        f"macro_f1 {metrics[schema.TEST_MACRO_F1]:.4f}  "
        f"steps {outcome.result.global_step}  {metrics[schema.WALL_TIME_S]:.0f}s"
    )
    return name, run_id, outcome


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


def resume_run(request: ResumeRequest) -> int:
    """Continue a killed or crashed run from its resume checkpoint: the checkpoint's side is
    `trainers.state.ResumePoint`, the store's `tracker.logger.resume`."""
    tracking_uri = request.tracking.tracking_uri
    run = find_resumable_run(request.run_id, tracking_uri)
    path = request.checkpoint or run.checkpoint
    if not path:
        raise UsageError(f"run {request.run_id} has no resume checkpoint; pass --checkpoint PATH")
    point = ResumePoint.load(Path(path), run.run_id)
    point.check_world_size(max(request.parallel.nproc, world_size_from_environment()))
    threads = use_threads(request.parallel)  # the run's params keep what it started with
    dist = _join_job(request.parallel)
    try:
        if dist is None or dist.is_main:
            check_write_access(tracking_uri, run.experiment)
        return _resume(request, run, point, dist, threads)
    finally:
        if dist is not None:
            dist.close()


def _resume(
    request: ResumeRequest, run, point: ResumePoint, dist: Distributed | None, threads
) -> int:
    data_config = point.data_config(request.cache_dir)
    prepared = prepare(data_config, dist)
    point.check_vocabulary(prepared.vocab.fingerprint, data_config)
    name = point.model_name
    configs = (name, point.model_config(), data_config, point.train_config(), prepared)
    governor = thread_governor(threads)
    if dist is not None and not dist.is_main:
        run_training(
            *configs,
            NullLogger(),
            progress=False,
            resume=point.state,
            dist=dist,
            governor=governor,
        )
        return 0
    # The steps between the checkpoint and the crash are recomputed; the store has some of
    # them already, and those are not logged again.
    stored = stored_progress(run.run_id, schema.ALL_METRICS, request.tracking.tracking_uri)
    for line in stored.notes:
        print(f"newsdesk resume: {line}", file=sys.stderr)
    last = stored.last_steps
    checkpointer = point.checkpointer()
    print(
        f"resuming run {run.run_id} ({name}, was {run.status}) at step "
        f"{point.state['global_step']} of epoch {point.state['epoch']}; the store has "
        f"train/loss up to step {last.get(schema.TRAIN_LOSS, 0)}",
        file=sys.stderr,
    )
    with open_logger(request.tracking, run_id=run.run_id, experiment=run.experiment) as log:
        announce_run(run.run_id)
        with report_interruption(run.run_id, checkpointer):
            outcome = run_training(
                *configs,
                SkipLogged(log, last),
                progress=not request.quiet,
                checkpointer=checkpointer,
                resume=point.state,
                dist=dist,
                governor=governor,
            )
    forget_resume_checkpoint(log)
    print(
        f"{name}: run {run.run_id} resumed and finished  "
        f"test/acc {outcome.test_metrics[schema.TEST_ACC]:.4f}  steps {outcome.result.global_step}"
    )
    return 0
