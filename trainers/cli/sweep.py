"""The work behind `newsdesk sweep`: an Optuna study whose trials are MLflow child runs.

- The study lives in Optuna's RDB storage (`--storage`; by default `optuna.db` beside a SQLite
  tracking store; Optuna and MLflow both keep an `alembic_version` table, so they cannot share
  one database file). `--study NAME` names it: the same command on several machines, or run
  again after an interruption, joins the same study.
- The parent run is made once per study (its id is a study attribute) and taken up again when
  the sweep continues; each trial is a run nested under it (`mlflow.parentRunId`), trained
  exactly as `newsdesk train` would with the trial's values as extra `--set` settings.
- TPE samples, a median pruner is fed `val/loss` at each evaluation; a pruned trial's run ends
  KILLED with `sweep.state=PRUNED`.
- `--jobs J` starts J worker processes on the shared storage. Each asks the study for a trial
  only while fewer than `--trials` are finished or running, so no more are trained.
- Nothing lost, nothing twice: a trial interrupted by Ctrl-C/SIGTERM, or whose process died
  (found at the next start on the same host by its pid), is marked FAIL and its values are
  queued again, so the continued sweep trains it once, from the start.
- At the end the parent gets the best value (`sweep/best_value`), the best trial's values as
  `best.*` tags, and a table and figure of all trials.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pandas as pd
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, schema
from tracker.cli.errors import UsageError
from tracker.dashboard.plots import sweep_history_figure
from tracker.interface import RunStatus
from tracker.processes import process_alive
from tracker.store.access import check_write_access
from tracker.store.location import redact, resolve_store, sqlite_path
from trainers.catalogue import Dimension
from trainers.cli.requests import SweepRequest
from trainers.cli.search_space import space_for
from trainers.cli.training import configs_for, prepare
from trainers.cli.wiring import log_threads, open_logger, thread_governor, use_threads
from trainers.data.pipeline import PreparedData
from trainers.run import run_training
from trainers.threads import child_environment

WORKER_ENV = "NEWSDESK_SWEEP_WORKER"
PARENT_ENV = "NEWSDESK_SWEEP_PARENT"
PARENT_ATTR = "mlflow_parent_run_id"
# A trial two workers asked for at once, one too many: ended at once, never trained.
SURPLUS_ATTR = "surplus"
OBJECTIVE = schema.VAL_LOSS  # minimised: the lowest val/loss a trial reached
FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


# ----- storage and study --------------------------------------------------------------------
def storage_url(request: SweepRequest) -> str:
    if request.storage:
        return request.storage
    db = sqlite_path(resolve_store(request.train.tracking.tracking_uri).tracking_uri)
    if db is None:
        raise UsageError(
            "--storage URL is needed with a tracking server (e.g. the team's PostgreSQL: "
            "postgresql+psycopg://user@host/optuna); a SQLite store keeps optuna.db beside it"
        )
    return f"sqlite:///{db.parent / 'optuna.db'}"


def open_study(request: SweepRequest, seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(request)
    storage = optuna.storages.RDBStorage(
        url,
        # Several workers write one SQLite file: wait for the lock instead of failing.
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
    )
    study = optuna.create_study(
        study_name=request.study or f"{request.train.tracking.experiment}-{request.model}",
        storage=storage,
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=request.pruner_startup_trials,
            n_warmup_steps=request.pruner_warmup_steps,
        ),
        load_if_exists=True,
    )
    # Seeded for repeatability, but never the same stream twice: a continued sweep (or a
    # second worker) with the seed of the first start would sample the first trials' values
    # again.
    study.sampler = optuna.samplers.TPESampler(seed=seed + 1000 * len(study.trials))
    return study


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def _running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


# ----- the parent run -----------------------------------------------------------------------
def parent_logger(
    request: SweepRequest, study: optuna.Study, space: tuple[Dimension, ...]
) -> TrainingLogger:
    """The study's parent run: made on the first start, taken up again on the next ones."""
    tracking = request.train.tracking
    parent = study.user_attrs.get(PARENT_ATTR)
    if parent is not None:
        client = MlflowClient(tracking_uri=resolve_store(tracking.tracking_uri).tracking_uri)
        try:
            client.get_run(parent)
        except Exception:  # noqa: BLE001 - MLflow raises several kinds for an unknown run
            raise UsageError(
                f"study {study.study_name!r} belongs to run {parent}, which is not in this "
                "tracking store; give another --study"
            ) from None
        return TrainingLogger(
            tracking.experiment, tracking_uri=tracking.tracking_uri, run_id=parent
        )
    log = TrainingLogger(
        tracking.experiment,
        run_name=f"sweep-{study.study_name}",
        tracking_uri=tracking.tracking_uri,
        tags={schema.MODEL_TAG: request.model, schema.SWEEP_STUDY_TAG: study.study_name},
        params={
            "sweep": {
                "model": request.model,
                "trials": request.trials,
                "jobs": request.jobs,
                "study": study.study_name,
                "storage": redact(storage_url(request)),
                "objective": f"min {OBJECTIVE}",
                "sampler": "TPE",
                "pruner": f"median (startup {request.pruner_startup_trials} trials, "
                f"warm-up {request.pruner_warmup_steps} steps)",
            },
            "space": {d.name: d.describe() for d in space},
        },
    )
    study.set_user_attr(PARENT_ATTR, log.run_id)
    return log


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS_ATTR):
            continue
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                "run_id": t.user_attrs.get("mlflow_run_id"),
                **{f"params.{k}": v for k, v in t.params.items()},
                "duration_s": t.duration.total_seconds() if t.duration else None,
            }
        )
    return pd.DataFrame(rows)


def summarize(log: TrainingLogger, study: optuna.Study) -> str:
    """Best value, best values as tags, the trials table and figure, on the parent run."""
    frame = trials_frame(study)
    finished = _finished(study)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return f"no trial completed ({finished} finished)"
    best = min(complete, key=lambda t: t.value)
    log.log_metrics(
        {schema.SWEEP_BEST_VALUE: best.value, schema.SWEEP_TRIALS: finished}, step=finished
    )
    log.set_tags(
        {
            "best.trial": best.number,
            "best.run_id": best.user_attrs.get("mlflow_run_id", ""),
            **{f"best.{k}": v for k, v in best.params.items()},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / Path(schema.SWEEP_TRIALS_ARTIFACT).name
        frame.to_csv(table, index=False)
        log.log_artifact(table, str(Path(schema.SWEEP_TRIALS_ARTIFACT).parent))
    fig = sweep_history_figure(frame, f"{OBJECTIVE} (lower is better)")
    log.log_figure(fig, schema.SWEEP_HISTORY_ARTIFACT)
    values = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
    )
    return f"best trial {best.number}: {OBJECTIVE} {best.value:.4f} ({values})"


# ----- one worker -----------------------------------------------------------------------------
def _end_run(client: MlflowClient, run_id: str | None, state: str) -> None:
    if not run_id:
        return
    run = client.get_run(run_id)
    if schema.left_open(run.info.status, run.data.tags):
        client.set_tag(run_id, schema.SWEEP_STATE_TAG, state)
        client.set_terminated(run_id, status=RunStatus.KILLED.value)


def reap_dead_trials(study: optuna.Study, client: MlflowClient) -> int:
    """Trials left RUNNING by a process of this host that died: FAIL, their values queued
    again, their runs ended KILLED. Returns how many."""
    host = socket.gethostname()
    reaped = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = t.user_attrs
        if attrs.get("host") != host or process_alive(int(attrs.get("pid", 0))):
            continue
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        _end_run(client, attrs.get("mlflow_run_id"), "INTERRUPTED")
        reaped += 1
    return reaped


class _Worker:
    def __init__(
        self,
        request: SweepRequest,
        study: optuna.Study,
        parent_run_id: str,
        space: tuple[Dimension, ...],
        prepared: PreparedData,
    ) -> None:
        self.request, self.study, self.parent_run_id = request, study, parent_run_id
        self.space, self.prepared = space, prepared
        self.threads = use_threads(request.train.parallel)
        tracking_uri = request.train.tracking.tracking_uri
        self.client = MlflowClient(tracking_uri=resolve_store(tracking_uri).tracking_uri)

    def run(self) -> None:
        failures = 0
        trials = self.request.trials
        while _finished(self.study) + _running(self.study) < trials:
            trial = self.study.ask()
            ahead = [
                t
                for t in self.study.get_trials(deepcopy=False)
                if t.number < trial.number
                and t.state in (*FINISHED_STATES, optuna.trial.TrialState.RUNNING)
            ]
            if len(ahead) >= trials:  # another worker took the last one first
                trial.set_user_attr(SURPLUS_ATTR, True)  # never ran: not in the trials table
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return
            if not self._trial(trial):
                failures += 1
                if failures >= max(3, trials):
                    raise RuntimeError(f"{failures} trials failed; see the trial runs")

    def _trial(self, trial: optuna.Trial) -> bool:
        """Train one trial; False when it failed."""
        request, model = self.request, self.request.model
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        values = {d.name: d.suggest(trial) for d in self.space}
        settings = request.train.settings.with_values(values)
        try:
            data_configs, train_configs, model_configs = configs_for(settings, (model,))
            data_config = data_configs[model]
        except ValueError as exc:  # a space value a config refuses: a usage error
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise UsageError(f"trial {trial.number}: {exc}") from None
        log = open_logger(
            request.train.tracking,
            run_name=f"trial-{trial.number}",
            parent_run_id=self.parent_run_id,
            tags={
                schema.MODEL_TAG: model,
                schema.SWEEP_STUDY_TAG: self.study.study_name,
                schema.SWEEP_TRIAL_TAG: trial.number,
            },
        )
        trial.set_user_attr("mlflow_run_id", log.run_id)
        log_threads(log, self.threads)

        def report(step: int, loss: float, acc: float) -> None:
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} ({OBJECTIVE} {loss:.4f})")

        prepared = self.prepared
        if any(d.name.startswith("data.") for d in self.space):
            prepared = prepare(data_config, None)  # the trial changes the data (cached)
        try:
            outcome = run_training(
                model,
                model_configs[model],
                data_config,
                train_configs[model],
                prepared,
                log,
                progress=False,
                on_validation=report,
                governor=thread_governor(self.threads),
            )
        except optuna.TrialPruned:
            self._end(log, "PRUNED", RunStatus.KILLED)
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            print(f"trial {trial.number}: pruned", flush=True)
            return True
        except KeyboardInterrupt:
            self._end(log, "INTERRUPTED", RunStatus.KILLED)
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        except Exception as exc:  # noqa: BLE001 - one failed trial does not end the sweep
            log.set_tags({schema.FAILURE_REASON_TAG: str(exc).splitlines()[0][:500]})
            self._end(log, "FAIL", RunStatus.FAILED)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            print(f"trial {trial.number}: failed: {exc}", file=sys.stderr, flush=True)
            return False
        value = min(loss for _, loss, _ in outcome.result.val_history)
        self._end(log, "COMPLETE", RunStatus.FINISHED)
        self.study.tell(trial, value)
        print(f"trial {trial.number}: {OBJECTIVE} {value:.4f}", flush=True)
        return True

    @staticmethod
    def _end(log: TrainingLogger, state: str, status: RunStatus) -> None:
        log.set_tags({schema.SWEEP_STATE_TAG: state})
        log.close(status)


# ----- the command ----------------------------------------------------------------------------
def _space(request: SweepRequest) -> tuple[Dimension, ...]:
    return space_for(request.model, request.space, fixed_length=request.fixed_length)


def _data_config(request: SweepRequest):
    """The sweep's data settings (bad `--set` values fail here, first)."""
    return configs_for(request.train.settings, (request.model,))[0][request.model]


def run_worker_process(request: SweepRequest) -> int:
    """One of the `--jobs` processes (started by `sweep`)."""
    index = int(os.environ[WORKER_ENV])
    study = open_study(request, seed=request.seed + index)
    prepared = prepare(_data_config(request), None)
    _Worker(request, study, os.environ[PARENT_ENV], _space(request), prepared).run()
    return 0


def _start_workers(request: SweepRequest, parent_run_id: str) -> list[subprocess.Popen]:
    procs = []
    for index in range(request.jobs):
        # The trials' processes share the CPUs instead of each starting one thread per CPU.
        env = child_environment(os.environ, request.jobs)
        env.update({WORKER_ENV: str(index), PARENT_ENV: parent_run_id})
        cmd = [sys.executable, "-m", "tracker.cli", *request.train.argv]
        procs.append(subprocess.Popen(cmd, env=env))
    return procs


def _wait(procs: list[subprocess.Popen]) -> int:
    def forward(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [proc.wait() for proc in procs]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    failed = [c for c in codes if c != 0]
    return failed[0] if failed else 0


def run_sweep(request: SweepRequest) -> int:
    if request.trials < 1 or request.jobs < 1:
        raise UsageError("--trials and --jobs must be at least 1")
    space = _space(request)
    data_config = _data_config(request)
    tracking = request.train.tracking
    check_write_access(tracking.tracking_uri, tracking.experiment)
    study = open_study(request, seed=request.seed)
    for values in request.enqueued:
        unknown = set(values) - {d.name for d in space}
        if unknown:
            raise UsageError(f"--enqueue: {sorted(unknown)[0]} is not in the search space")
        study.enqueue_trial(values, skip_if_exists=True)  # given again on a continue: once
    client = MlflowClient(tracking_uri=resolve_store(tracking.tracking_uri).tracking_uri)
    reaped = reap_dead_trials(study, client)
    if reaped:
        print(f"{reaped} trial(s) of an earlier start had died; queued again", file=sys.stderr)
    print(
        f"study {study.study_name} ({redact(storage_url(request))}): "
        f"{_finished(study)} of {request.trials} trials finished",
        flush=True,
    )
    log = parent_logger(request, study, space)
    status = RunStatus.FAILED
    try:
        if request.jobs == 1:
            prepared = prepare(data_config, None)
            _Worker(request, study, log.run_id, space, prepared).run()
            code = 0
        else:
            code = _wait(_start_workers(request, log.run_id))
        message = summarize(log, study)
        status = RunStatus.FINISHED if code == 0 else RunStatus.FAILED
        if code in (130, 143, -2, -15):
            status = RunStatus.KILLED
        print(f"sweep {log.run_id}: {message}")
        return code
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        summarize(log, study)
        print(
            f"sweep interrupted; continue it with the same command (--study {study.study_name})",
            file=sys.stderr,
        )
        raise
    finally:
        log.close(status)
