"""A plain DDP training loop logged with newsdesk: one run for the whole job.

    torchrun --standalone --nproc-per-node 2 examples/ddp_loop.py DATA_DIR [--experiment NAME]

`rank_zero_logger` opens the run on rank 0 and hands the other ranks a logger that does
nothing, so the loop logs without `if rank == 0`. The loss is averaged over the ranks before
it is logged (each rank only sees its shard).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from tracker.logger.distributed import rank_zero_logger


def load(folder: Path, n: int = 1024, seq_len: int = 24) -> tuple[TensorDataset, int]:
    lines = (folder / "train.txt").read_text(encoding="utf-8").splitlines()[:n]
    texts, labels = zip(*(line.split("\t") for line in lines), strict=True)
    vocab = {c: i + 1 for i, c in enumerate(sorted({c for t in texts for c in t}))}
    ids = torch.zeros(len(texts), seq_len, dtype=torch.long)
    for row, text in enumerate(texts):
        for col, char in enumerate(text[:seq_len]):
            ids[row, col] = vocab[char]
    return TensorDataset(ids, torch.tensor([int(y) for y in labels])), len(vocab) + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--experiment", default="ddp-example")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    dist.init_process_group("gloo")  # "nccl" on GPUs
    torch.manual_seed(0)
    dataset, vocab_size = load(args.data)
    model = DistributedDataParallel(
        nn.Sequential(nn.EmbeddingBag(vocab_size, 32, padding_idx=0), nn.Linear(32, 10))
    )
    sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    step = 0
    params = {"world_size": dist.get_world_size(), "batch_size_per_rank": 32}
    with rank_zero_logger(args.experiment, run_name="ddp-loop", params=params) as log:
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            for ids, labels in loader:
                loss = F.cross_entropy(model(ids), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                mean = loss.detach().clone()
                dist.all_reduce(mean)  # every rank takes part; rank 0's logger stores it
                log.log_metrics({"train/loss": mean.item() / dist.get_world_size()}, step=step)
    # Leave together: without this, a rank other than 0 (its logger has nothing to flush)
    # exits right after its last all_reduce, while gloo's worker thread may still hold that
    # tensor; freeing it during interpreter shutdown aborts the process ("terminate called
    # without an active exception", SIGABRT, seen once in CI), and torchrun fails the job.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
