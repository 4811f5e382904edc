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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from tracker.interface import MetricLogger
from trainers.config import TrainConfig
from trainers.data.pipeline import PreparedData
from trainers.evaluate import Evaluation, evaluate
from trainers.resume_state import Checkpointer

MONITORS = ("val/loss", "val/acc")


class TrainingDiverged(RuntimeError):
    """Raised after `max_bad_losses` consecutive non-finite losses."""


@dataclass
class TrainResult:
    global_step: int
    best_step: int
    best_value: float
    stopped_early: bool
    test: Evaluation
    train_seconds: float
    samples_per_s: float
    train_history: list[tuple[int, float, float]] = field(default_factory=list)
    val_history: list[tuple[int, float, float]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def make_optimizers(model: nn.Module, lr: float) -> tuple[list[torch.optim.Optimizer], list]:
    """Adam for dense parameters, SparseAdam (lazy Adam) for sparse embedding tables.

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
        optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))
    return optimizers, dense


def _check_config(config: TrainConfig) -> None:
    if config.monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {config.monitor!r}")
    if config.mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {config.mode!r}")
    if config.batch_size < 1 or config.eval_every < 1 or config.epochs < 1:
        raise ValueError("batch_size, eval_every and epochs must be positive")


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


def train(
    model: nn.Module,
    data: PreparedData,
    config: TrainConfig,
    logger: MetricLogger,
    *,
    progress: bool = True,
    checkpointer: Checkpointer | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train with early stopping on `config.monitor`; returns with the best weights loaded.

    With a `checkpointer`, the full training state is saved periodically and when SIGINT or
    SIGTERM arrives (then `TrainingInterrupted` is raised at the next step boundary). With
    `resume` (a loaded resume checkpoint), training continues from that state: same step, same
    position in the same epoch order, same optimizer, scheduler, RNG and early-stopping state.
    """
    _check_config(config)
    device = resolve_device(config.device)
    model.to(device)
    train_split = data.splits["train"]
    n = len(train_split)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizers, dense = make_optimizers(model, config.lr)
    schedulers = []
    if config.lr_decay == "linear":
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(o, lambda s: max(0.0, 1.0 - s / total_steps))
            for o in optimizers
        ]
    sign = 1.0 if config.mode == "min" else -1.0
    best_value, best_step, best_state = math.inf, 0, None
    generator = torch.Generator().manual_seed(config.seed)
    result_train: list[tuple[int, float, float]] = []
    result_val: list[tuple[int, float, float]] = []
    global_step, bad_losses, stopped_early, train_seconds = 0, 0, False, 0.0
    last_val_acc = float("nan")
    epoch, first_start = 0, 0
    epoch_rng = generator.get_state()
    if resume is not None:
        model.load_state_dict(resume["model"])
        for opt, saved in zip(optimizers, resume["optimizers"], strict=True):
            opt.load_state_dict(saved)
        for sched, saved in zip(schedulers, resume["schedulers"], strict=True):
            sched.load_state_dict(saved)
        global_step, epoch, first_start = (
            resume["global_step"],
            resume["epoch"],
            resume["next_start"],
        )
        best_value, best_step, best_state = (
            resume["best_value"],
            resume["best_step"],
            resume["best_state"],
        )
        bad_losses, train_seconds = resume["bad_losses"], resume["train_seconds"]
        last_val_acc, stopped_early = resume["last_val_acc"], resume["stopped_early"]
        result_train = [tuple(x) for x in resume["train_history"]]
        result_val = [tuple(x) for x in resume["val_history"]]
        torch.set_rng_state(resume["torch_rng_state"])
        epoch_rng = resume["epoch_rng_state"]
    bar = tqdm(
        total=total_steps,
        initial=global_step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )

    def validate() -> bool:
        """Log validation at the current step; True when early stopping should end training."""
        nonlocal best_value, best_step, best_state, last_val_acc
        ev = evaluate(model, data.splits["dev"], config.eval_batch_size, device)
        logger.log_metrics({"val/loss": ev.loss, "val/acc": ev.acc}, step=global_step)
        result_val.append((global_step, ev.loss, ev.acc))
        last_val_acc = ev.acc
        value = sign * (ev.loss if config.monitor == "val/loss" else ev.acc)
        if value < best_value:
            best_value, best_step = value, global_step
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return False
        return global_step - best_step >= config.patience

    def state(next_start: int) -> dict[str, Any]:
        """The whole training state at a step boundary (tensors and plain values only)."""
        return {
            "global_step": global_step,
            "epoch": epoch,
            "next_start": next_start,
            "epoch_rng_state": epoch_rng,
            "torch_rng_state": torch.get_rng_state(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizers": [o.state_dict() for o in optimizers],
            "schedulers": [s.state_dict() for s in schedulers],
            "best_value": best_value,
            "best_step": best_step,
            "best_state": best_state,
            "bad_losses": bad_losses,
            "stopped_early": stopped_early,
            "train_seconds": train_seconds,
            "last_val_acc": last_val_acc,
            "train_history": result_train,
            "val_history": result_val,
        }

    def checkpoint(snapshot: dict[str, Any], *, graceful: bool) -> None:
        """Save a resume checkpoint only once the store has every point logged before it.

        A resume skips the steps up to the checkpoint; if the store lacked some of their
        points (still in the writer's memory when the process was SIGKILLed), they would be a
        gap. So a periodic save first flushes (briefly); when the store is too slow or down,
        the previous checkpoint stays, and a resume recomputes and logs those steps instead.
        On SIGINT/SIGTERM the logger spools what it cannot store, so the save always happens.
        """
        if checkpointer is None:
            return
        if logger.flush(timeout=checkpointer.flush_timeout_s) or graceful:
            checkpointer.save(snapshot)
        else:
            checkpointer.postpone()

    model.train()
    resuming = resume is not None
    with _StopRequests() as stop:
        while global_step < total_steps and not stopped_early:
            if resuming:
                # Same generator state as when this epoch began: the same order again.
                generator.set_state(epoch_rng)
                resuming = False
            else:
                epoch += 1
                first_start = 0
                epoch_rng = generator.get_state()
            order = torch.randperm(n, generator=generator)
            for start in range(first_start, n, config.batch_size):
                tick = time.perf_counter()
                index = order[start : start + config.batch_size]
                ids = train_split.ids[index].to(device, non_blocking=True)
                labels = train_split.labels[index].to(device, non_blocking=True)
                logits = model(ids)
                loss = F.cross_entropy(logits, labels)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    bad_losses += 1
                    if bad_losses >= config.max_bad_losses:
                        raise TrainingDiverged(
                            f"{bad_losses} consecutive non-finite losses at step "
                            f"{global_step + 1}; stopping (lower train.lr or check the data)"
                        )
                    continue
                bad_losses = 0
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad_norm:
                    nn.utils.clip_grad_norm_(dense, config.clip_grad_norm)
                for opt in optimizers:
                    opt.step()
                for sched in schedulers:
                    sched.step()
                global_step += 1
                acc = (logits.argmax(dim=1) == labels).float().mean().item()
                train_seconds += time.perf_counter() - tick
                lr = optimizers[0].param_groups[0]["lr"]
                logger.log_metrics(
                    {"train/loss": loss_value, "train/acc": acc, "lr": lr, "epoch": epoch},
                    step=global_step,
                )
                result_train.append((global_step, loss_value, acc))
                bar.update(1)
                if global_step % 10 == 0:
                    bar.set_postfix(
                        epoch=epoch, loss=f"{loss_value:.3f}", val_acc=f"{last_val_acc:.3f}"
                    )
                is_last = global_step >= total_steps
                if global_step % config.eval_every == 0 or is_last:
                    stopped_early = validate() and not is_last
                    if stopped_early or is_last:
                        break
                if checkpointer is not None and (stop.signum or checkpointer.due(global_step)):
                    checkpoint(state(start + config.batch_size), graceful=bool(stop.signum))
                if stop.signum:
                    bar.close()
                    path = checkpointer.path if checkpointer is not None else None
                    raise TrainingInterrupted(stop.signum, global_step, path)
    bar.close()
    if not result_val or result_val[-1][0] != global_step:
        validate()
    if checkpointer is not None:
        # Training is done: if what follows (test, artifacts, model upload) fails, a resume
        # starts here instead of retraining since the last periodic checkpoint.
        checkpoint(state(n), graceful=False)
    if best_state is not None:
        model.load_state_dict(best_state)
    test = evaluate(model, data.splits["test"], config.eval_batch_size, device)
    samples_per_s = global_step * config.batch_size / train_seconds if train_seconds else 0.0
    return TrainResult(
        global_step=global_step,
        best_step=best_step,
        best_value=sign * best_value,
        stopped_early=stopped_early,
        test=test,
        train_seconds=train_seconds,
        samples_per_s=samples_per_s,
        train_history=result_train,
        val_history=result_val,
    )
