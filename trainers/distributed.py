"""Data-parallel training across processes (DistributedDataParallel), for the loop.

A job of N processes (started by `newsdesk train --nproc N` or by `torchrun`) trains one model:
every process holds a replica, sees its own shard of each epoch's shuffled order (the shards of
`torch.utils.data.DistributedSampler`: the order padded to a multiple of N, then every N-th
index), and DDP averages the gradients. The loop asks this module for the few collective
decisions it needs, so that every process takes the same branch at the same step:

- each step's loss and accuracy, averaged over the processes (that is what rank 0 logs, and
  what the divergence check sees), together with "did any process receive a stop signal";
- after a validation (done by rank 0 alone, on the unwrapped model), whether to stop early.

A collective that fails because another process died becomes `PeerLost`, so the job ends
with one clear line and a FAILED run instead of hanging; the process group's timeout bounds
the wait when a peer hangs instead of dying.
"""

from __future__ import annotations

import datetime
import inspect
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

DEFAULT_TIMEOUT_S = 300.0
# How long a collective's tensor may stay held by the backend's worker thread after the
# collective returned (normally microseconds; only a descheduled thread takes longer).
RELEASE_WAIT_S = 2.0


class PeerLost(RuntimeError):
    """Another process of the distributed job stopped (or did not answer within the timeout)."""


def world_size_from_environment() -> int:
    """WORLD_SIZE as set by `torchrun` or `newsdesk train --nproc`; 1 outside a job."""
    value = os.environ.get("WORLD_SIZE", "1").strip()
    return int(value) if value.isdigit() else 1


@dataclass
class Distributed:
    """This process's place in the job, and the collectives the loop uses."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @classmethod
    def from_environment(cls, timeout_s: float = DEFAULT_TIMEOUT_S) -> Distributed | None:
        """Join the job described by RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT; None when this
        process is not part of one (WORLD_SIZE unset or 1)."""
        world_size = world_size_from_environment()
        if world_size <= 1:
            return None
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
        return cls(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=backend,
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process (by local rank) when training on CUDA."""
        if device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        ids = [device.index] if device.type == "cuda" else None
        # The models' only buffers are the bags' idf weights, the same on every rank and fixed
        # before training: the wrapper copies them from rank 0 once, at construction, instead
        # of broadcasting them (1 MB) at every forward.
        return DistributedDataParallel(model, device_ids=ids, **_no_forward_buffer_sync())

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of an epoch's order, as `DistributedSampler` makes it."""
        total = -(-len(order) // self.world_size) * self.world_size
        if total > len(order):
            order = torch.cat([order, order[: total - len(order)]])
        return order[self.rank : total : self.world_size]

    def shard_size(self, n: int) -> int:
        return -(-n // self.world_size)

    def reduce_step(
        self, loss: torch.Tensor, correct: torch.Tensor, stop: bool
    ) -> tuple[float, float, bool]:
        """(mean loss, mean accuracy, any process asked to stop) over the job."""
        flag = torch.tensor(float(stop), device=loss.device)  # stack needs one device
        values = torch.stack([loss.detach().float(), correct.detach().float(), flag])
        self._on_device(dist.all_reduce, values)
        mean_loss, mean_acc = (values[:2] / self.world_size).tolist()
        return mean_loss, mean_acc, bool(values[2].item() > 0)

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every rank."""
        value = torch.tensor([1.0 if flag else 0.0])
        self._on_device(dist.broadcast, value, src=0)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        self._collective(dist.barrier)

    def _on_device(self, op, tensor: torch.Tensor, **kwargs) -> None:
        """Run collective `op` on `tensor` in place (through the GPU under NCCL)."""
        if self.backend == "nccl":
            moved = tensor.to(torch.device("cuda", self.local_rank))
            self._collective(op, moved, **kwargs)
            _wait_until_released(moved, 1)
            tensor.copy_(moved.cpu())
        else:
            self._collective(op, tensor, **kwargs)
            _wait_until_released(tensor, 1)

    def _collective(self, op, *args, **kwargs) -> None:
        with self.collectives():
            op(*args, **kwargs)

    @contextmanager
    def collectives(self) -> Iterator[None]:
        """Around code that communicates (a DDP backward averages gradients): a failure of
        the communication, which is how gloo and nccl report a dead or silent peer, becomes
        `PeerLost`."""
        try:
            yield
        except PeerLost:
            raise
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
            raise PeerLost(
                f"another process of the {self.world_size}-process job stopped or stopped "
                f"answering (rank {self.rank} saw: {first})"
            ) from exc

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _no_forward_buffer_sync() -> dict[str, bool]:
    """DDP's argument that turns off the per-forward buffer broadcast: `forward_sync_buffers`
    from torch 2.13 on, which deprecates the older `broadcast_buffers`."""
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in params:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _wait_until_released(tensor: torch.Tensor, owners: int) -> None:
    """Return once only `owners` references to `tensor` remain, i.e. the backend's worker
    thread has dropped the finished work that held it.

    Why: gloo's worker thread destroys a finished work (and its tensors) just after the
    collective returns. If Python has let go of such a tensor by then, that destruction needs
    the GIL; when it happens while the interpreter is shutting down (a rank other than 0
    exits right after its last collective), the thread is torn down mid-destructor and the
    process dies with "terminate called without an active exception" (SIGABRT).
    `destroy_process_group` cannot prevent it: a process group that DDP has used stays
    alive, threads included, until the process ends. Waiting here keeps Python the last
    owner, so the tensor is freed on this thread, with the GIL."""
    use_count = getattr(tensor, "_use_count", None)
    if use_count is None:  # a torch without it: nothing to wait on
        return
    deadline = time.monotonic() + RELEASE_WAIT_S
    while use_count() > owners and time.monotonic() < deadline:
        time.sleep(0)
