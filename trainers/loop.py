"""The training loop. It receives a logger (the `MetricLogger` interface), never MLflow.

One counter, `global_step`, counts optimizer steps; it is incremented right after the
optimizer step, and every point (per-batch train metrics, validation, test) is logged at it,
so train and validation curves share one x-axis in the MLflow UI.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from tracker import schema
from tracker.interface import MetricLogger
from trainers.config import TrainConfig, resolve_schedule
from trainers.data.pipeline import PreparedData, Tensors
from trainers.distributed import Distributed
from trainers.evaluate import Evaluation, evaluate
from trainers.evaluation_log import evaluation_file, evaluation_record
from trainers.progress import Progress
from trainers.reporting import RunResult
from trainers.state import Checkpointer, TrainingParts, TrainingState

ValidationHook = Callable[[int, float, float], None]  # (global_step, val loss, val acc)


class Governor(Protocol):
    """Adjusts the thread count while training (`trainers.threads.ThreadGovernor`)."""

    def tick(self) -> int | None: ...


class TrainingDiverged(RuntimeError):
    """The loss became non-finite, or exceeded `divergence_threshold` times the first loss."""


@dataclass(kw_only=True)
class TrainResult(RunResult):
    """What the loop returns: a run's result, and the monitored metric's best value and
    whether early stopping ended it."""

    best_value: float
    stopped_early: bool


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def make_optimizers(
    model: nn.Module, lr: float, sparse_lr: float | None = None
) -> tuple[list[torch.optim.Optimizer], list]:
    """Adam for dense parameters, SparseAdam (lazy Adam) at `sparse_lr` (default `lr`) for
    sparse embedding tables: a table row is updated only in the steps whose batch holds its
    token, far less often than a dense weight, so it may take larger steps.

    Returns the optimizers and the dense parameters (the ones gradient clipping applies to).
    """
    sparse_ids = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse
    }
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
    sparse = [p for p in model.parameters() if p.requires_grad and id(p) in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=lr)]
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=sparse_lr or lr))
    return optimizers, dense


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the loop: it checkpointed at a step boundary and stops.

    A KeyboardInterrupt, so the logger ends the run KILLED (after flushing).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        name = signal.Signals(signum).name
        where = f"; checkpoint at step {step} in {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {name} after step {step}{where}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


class _StopRequests:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (main thread only).

    A second SIGINT interrupts at once, as Ctrl-C twice is expected to.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def build_parts(
    model: nn.Module, n_train: int, config: TrainConfig, dist: Distributed | None = None
) -> TrainingParts:
    """Device, optimizers, LR schedules and the step budget for `model` on `n_train` examples.

    In a distributed job each process sees its shard of the data, so an epoch has fewer
    steps, and the step calls the DDP wrapper.
    """
    device = resolve_device(config.device)
    if dist is not None:
        device = dist.device(device)
        n_train = dist.shard_size(n_train)
    model.to(device)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizers, dense = make_optimizers(model, config.lr, config.sparse_lr)
    schedulers = []
    if config.lr_decay == "linear":
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(o, lambda s: max(0.0, 1.0 - s / total_steps))
            for o in optimizers
        ]
    train_model = dist.wrap(model, device) if dist is not None else None
    return TrainingParts(
        model, optimizers, schedulers, dense, device, total_steps, steps_per_epoch, train_model
    )


def per_process_examples(n_train: int, dist: Distributed | None) -> int:
    """Training examples one process sees per epoch (its shard in a distributed job)."""
    return dist.shard_size(n_train) if dist is not None else n_train


def train(
    model: nn.Module,
    data: PreparedData,
    config: TrainConfig,
    logger: MetricLogger,
    *,
    progress: bool = True,
    progress_label: str = "",
    checkpointer: Checkpointer | None = None,
    resume: dict[str, Any] | None = None,
    dist: Distributed | None = None,
    on_validation: ValidationHook | None = None,
    governor: Governor | None = None,
) -> TrainResult:
    """Train with early stopping on `config.monitor`; returns with the best weights loaded.

    With a `checkpointer`, the full training state is saved periodically and when SIGINT or
    SIGTERM arrives (then `TrainingInterrupted` is raised at the next step boundary). With
    `resume` (a loaded resume checkpoint), training continues from that state: same step, same
    position in the same epoch order, same optimizer, scheduler, RNG and early-stopping state.
    With `dist`, this process is one of a data-parallel job (`trainers.distributed`): rank 0
    validates, logs, checkpoints and tests; the others only train. `on_validation(step, loss,
    acc)` is called after each validation is logged; an exception it raises (a sweep's
    pruner deciding to stop this trial) ends the training. `governor.tick()` is called after
    every step; when it returns a new thread count, that is logged as `perf/threads`.
    """
    config = resolve_schedule(config, per_process_examples(len(data.splits["train"]), dist))
    parts = build_parts(model, len(data.splits["train"]), config, dist)
    loop = _Loop(parts, data, config, logger, checkpointer, dist)
    loop.on_validation = on_validation
    loop.governor = governor
    return loop.run(resume, progress, progress_label)


class _Loop:
    """One training: the parts, the state, and the steps that advance it."""

    def __init__(
        self,
        parts: TrainingParts,
        data: PreparedData,
        config: TrainConfig,
        logger: MetricLogger,
        checkpointer: Checkpointer | None,
        dist: Distributed | None = None,
    ) -> None:
        self.parts, self.data, self.config = parts, data, config
        self.logger, self.checkpointer = logger, checkpointer
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        self._agreed_stop: int | None = None  # a stop every process of the job agreed on
        self.on_validation: ValidationHook | None = None
        self.governor: Governor | None = None
        self.sign = 1.0 if config.mode == "min" else -1.0
        # The model's own training loss where it has one (FastText's hinge), else cross-entropy.
        self._loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = getattr(
            parts.model, "training_loss", F.cross_entropy
        )
        # The same seed on every process: the same epoch order, which each then shards.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.state = TrainingState(
            epoch_rng_state=self.generator.get_state(),
            world_size=dist.world_size if dist is not None else 1,
        )

    def run(
        self, resume: dict[str, Any] | None, progress: bool, progress_label: str = ""
    ) -> TrainResult:
        if resume is not None:
            self.state = TrainingState.restore(resume, self.parts)
            world_size = self.dist.world_size if self.dist is not None else 1
            if self.state.world_size != world_size:
                raise ValueError(
                    f"the checkpoint was written by a job of {self.state.world_size} "
                    f"process(es); resume it with --nproc {self.state.world_size}"
                )
        elif self.checkpointer is not None:
            # Step 0, before anything is logged: a training killed before its first periodic
            # checkpoint resumes from the start, into the same run.
            self.checkpointer.save(self.state.save(self.parts), periodic=False)
        bar = Progress(
            self.parts.total_steps,
            initial=self.state.global_step,
            steps_per_epoch=self.parts.steps_per_epoch,
            enabled=progress,
            label=progress_label,
        )
        try:
            with _StopRequests() as stop:
                self._epochs(bar, stop, resuming=resume is not None)
            if self.state.stopped_early:
                bar.say(self._stop_reason())
        finally:
            bar.close()
        return self._finish()

    # ----- the epochs and their steps ---------------------------------------------------------
    def _epochs(self, bar: Progress, stop: _StopRequests, *, resuming: bool) -> None:
        state, parts = self.state, self.parts
        train_split = self.data.splits["train"]
        n = len(train_split)
        dist = self.dist
        while state.global_step < parts.total_steps and not state.stopped_early:
            if resuming:
                # Same generator state as when this epoch began: the same order again.
                self.generator.set_state(state.epoch_rng_state)
                resuming = False
            else:
                state.epoch += 1
                state.next_start = 0
                state.epoch_rng_state = self.generator.get_state()
            order = torch.randperm(n, generator=self.generator)
            if dist is not None:
                order = dist.shard(order)
            for start in range(state.next_start, len(order), self.config.batch_size):
                index = order[start : start + self.config.batch_size]
                self._step(train_split, index, bar, stop)
                if self.governor is not None:
                    threads = self.governor.tick()
                    if threads is not None:
                        self.logger.log_metrics({schema.THREADS: threads}, step=state.global_step)
                if self._evaluate_if_due():
                    return
                state.next_start = start + self.config.batch_size
                signum = self._agreed_stop if dist is not None else stop.signum
                self._checkpoint_if_due(signum)
                if signum:
                    path = self.checkpointer.path if self.checkpointer is not None else None
                    raise TrainingInterrupted(signum, state.global_step, path)

    def _step(
        self, split: Tensors, index: torch.Tensor, bar: Progress, stop: _StopRequests
    ) -> None:
        """One optimizer step on the batch `index`, logged; `TrainingDiverged` when the loss is
        not finite or exploded.

        In a distributed job the loss and accuracy are averaged over the processes before
        anything is decided or logged, and a stop signal any process received before this
        step's reduction stops every process after this step (`_agreed_stop`).
        """
        state, parts, config = self.state, self.parts, self.config
        tick = time.perf_counter()
        ids = split.ids[index].to(parts.device, non_blocking=True)
        labels = split.labels[index].to(parts.device, non_blocking=True)
        logits = parts.forward(ids)
        loss = self._loss(logits, labels)
        correct = (logits.argmax(dim=1) == labels).float().mean()
        if self.dist is not None:
            loss_value, acc, any_stop = self.dist.reduce_step(loss, correct, bool(stop.signum))
            self._agreed_stop = (stop.signum or signal.SIGTERM) if any_stop else None
        else:
            loss_value, acc = loss.item(), correct.item()
        if not math.isfinite(loss_value):
            # Stored as it is (MLflow keeps NaN and inf), so the curve shows where it broke.
            step = state.global_step + 1
            self.logger.log_metrics({schema.TRAIN_LOSS: loss_value}, step=step)
            raise TrainingDiverged(
                f"non-finite training loss ({loss_value}) at step {step}; "
                "lower train.lr or check the data"
            )
        for opt in parts.optimizers:
            opt.zero_grad(set_to_none=True)
        if self.dist is None:
            loss.backward()
        else:
            with self.dist.collectives():
                loss.backward()  # under DDP, this averages the gradients over the processes
        if config.clip_grad_norm:
            nn.utils.clip_grad_norm_(parts.dense, config.clip_grad_norm)
        try:
            for opt in parts.optimizers:
                opt.step()
        except RuntimeError as exc:  # a step size beyond float32 ("... without overflow")
            if "overflow" not in str(exc):
                raise
            step = state.global_step + 1  # the loss it broke at, on the curve
            self.logger.log_metrics({schema.TRAIN_LOSS: loss_value}, step=step)
            raise TrainingDiverged(
                f"the optimizer step overflowed at step {step} "
                f"(train.lr={config.lr:g}: {exc}); lower train.lr"
            ) from exc
        for sched in parts.schedulers:
            sched.step()
        state.global_step += 1
        state.train_seconds += time.perf_counter() - tick
        self.logger.log_metrics(
            {
                schema.TRAIN_LOSS: loss_value,
                schema.TRAIN_ACC: acc,
                schema.LR: parts.optimizers[0].param_groups[0]["lr"],
                schema.EPOCH: state.epoch,
            },
            step=state.global_step,
        )
        state.train_history.append((state.global_step, loss_value, acc))
        bar.update(state.global_step, state.epoch, loss_value, state.last_val_acc)
        self._check_divergence(loss_value)

    def _check_divergence(self, loss_value: float) -> None:
        """Stop when the loss exploded: above `divergence_threshold` times the first loss."""
        state, threshold = self.state, self.config.divergence_threshold
        if state.first_loss is None:
            state.first_loss = loss_value
        elif loss_value > threshold * state.first_loss:
            raise TrainingDiverged(
                f"training loss {loss_value:.4g} at step {state.global_step} is over "
                f"{threshold:g} times the first loss ({state.first_loss:.4g}); lower train.lr"
            )

    def _stop_reason(self) -> str:
        state, config = self.state, self.config
        return (
            f"stopped early at step {state.global_step} of {self.parts.total_steps}: "
            f"{config.monitor} did not improve for {config.patience} steps; keeping the best, "
            f"step {state.best_step}"
        )

    def _evaluate_if_due(self) -> bool:
        """Validate every `eval_every` steps and at the last; True when training should end."""
        state = self.state
        is_last = state.global_step >= self.parts.total_steps
        if state.global_step % self.config.eval_every != 0 and not is_last:
            return False
        # Rank 0 validates alone; the others wait for its decision.
        stop = self._validate() if self.is_main else False
        if self.dist is not None:
            stop = self.dist.broadcast_flag(stop)
        state.stopped_early = stop and not is_last
        return state.stopped_early or is_last

    def _validate(self) -> bool:
        """Log validation at the current step; True when early stopping should end training."""
        state, config = self.state, self.config
        parts = self.parts
        # A model whose scores are margins is calibrated on dev first, so that `val/loss` is
        # the log-loss of the probabilities it would predict (what early stopping, a sweep's
        # objective and its pruner compare), not of raw margins.
        self._calibrate()
        ev = evaluate(parts.model, self.data.splits["dev"], config.eval_batch_size, parts.device)
        self.logger.log_metrics(
            {schema.VAL_LOSS: ev.loss, schema.VAL_ACC: ev.acc}, step=state.global_step
        )
        self._log_evaluation(ev)
        state.val_history.append((state.global_step, ev.loss, ev.acc))
        state.last_val_acc = ev.acc
        value = self.sign * (ev.loss if config.monitor == schema.VAL_LOSS else ev.acc)
        improved = state.improve(value, parts.model)
        self._log_best(ev.loss, ev.acc, improved)
        if self.on_validation is not None:
            self.on_validation(state.global_step, ev.loss, ev.acc)
        if improved:
            return False
        return state.global_step - state.best_step >= config.patience

    def _log_evaluation(self, ev: Evaluation) -> None:
        """The dev confusion matrix and the most confident mistakes at this step, for the
        dashboard's view of the classifier over the evaluations."""
        corpus = self.data.corpus
        record = evaluation_record(self.state.global_step, ev, corpus.dev.texts, corpus.label_names)
        self.logger.log_dict(record, evaluation_file(self.state.global_step))

    def _log_best(self, loss: float, acc: float, improved: bool) -> None:
        """Log the best-so-far values that this evaluation improved (NaN never improves)."""
        state = self.state
        best: dict[str, float] = {}
        if loss < state.best_val_loss:
            state.best_val_loss = best[schema.BEST_LOSS] = loss
        if acc > state.best_val_acc:
            state.best_val_acc = best[schema.BEST_ACC] = acc
        if improved:
            best[schema.BEST_AT_STEP] = state.global_step
        if best:
            self.logger.log_metrics(best, step=state.global_step)

    # ----- checkpoints ------------------------------------------------------------------------
    def _checkpoint_if_due(self, stopping: int | None) -> None:
        checkpointer = self.checkpointer
        if checkpointer is not None and (stopping or checkpointer.due(self.state.global_step)):
            self._checkpoint(graceful=bool(stopping))

    def _checkpoint(self, *, graceful: bool) -> None:
        """Save a resume checkpoint only once the store has every point logged before it.

        A resume skips the steps up to the checkpoint; if the store lacked some of their
        points (still in the run's log, not yet shipped, when the process was SIGKILLed), they
        would be a gap. So a periodic save first flushes (briefly); when the store is too slow
        or down, the previous checkpoint stays, and a resume recomputes and logs those steps
        instead.
        On SIGINT/SIGTERM the logger keeps in its log what it cannot store, so the save always
        happens.
        """
        checkpointer = self.checkpointer
        if checkpointer is None:
            return
        if self.logger.flush(timeout=checkpointer.flush_timeout_s) or graceful:
            checkpointer.save(self.state.save(self.parts))
        else:
            checkpointer.postpone()

    # ----- the end ----------------------------------------------------------------------------
    def _finish(self) -> TrainResult:
        """Validate at the last step if not done, checkpoint, load the best weights, test."""
        state, parts, config = self.state, self.parts, self.config
        if not self.is_main:
            return self._result(None)
        if not state.val_history or state.val_history[-1][0] != state.global_step:
            self._validate()
        # Training is done: if what follows (test, artifacts, model upload) fails, a resume
        # starts here instead of retraining. This one is saved even when the store lags: no
        # step is recomputed from it, and the trained weights must survive a dead store.
        state.next_start = len(self.data.splits["train"])
        self._checkpoint(graceful=True)
        if state.best_state is not None:
            parts.model.load_state_dict(state.best_state)
        self._calibrate()
        test = evaluate(parts.model, self.data.splits["test"], config.eval_batch_size, parts.device)
        return self._result(test)

    def _calibrate(self) -> None:
        """A model whose scores are margins (FastText's hinge loss) fits its softmax
        temperature on the dev split: before each validation, and after the best weights are
        back, before the test."""
        calibrate = getattr(self.parts.model, "calibrate", None)
        if calibrate is not None:
            dev = self.data.splits["dev"]
            calibrate(dev.ids, dev.labels, self.config.eval_batch_size, self.parts.device)

    def _result(self, test: Evaluation | None) -> TrainResult:
        state, config = self.state, self.config
        seconds = state.train_seconds
        samples = state.global_step * config.batch_size * state.world_size
        return TrainResult(
            global_step=state.global_step,
            best_step=state.best_step,
            best_value=self.sign * state.best_value,
            stopped_early=state.stopped_early,
            test=test,
            train_seconds=seconds,
            samples_per_s=samples / seconds if seconds else 0.0,
            train_history=state.train_history,
            val_history=state.val_history,
        )
