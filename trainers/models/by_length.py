"""A model's outputs on many encoded texts, computed in batches of texts of similar length.

Prediction and evaluation both run the model over thousands of padded texts whose real
lengths vary (headlines average about 20 of the 35 positions kept). A model that says how
much trailing padding its output needs (`trailing_pad_needed`) gets batches sorted by length,
each cut to its longest text plus that padding: the same outputs, without the work on
padding.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def padding_margin(model: nn.Module) -> int | None:
    """The padding the model needs after a batch's longest text, or None when its output
    depends on all the padding (then batches keep every position)."""
    return getattr(model, "trailing_pad_needed", None)


@torch.no_grad()
def logits_by_length(
    model: nn.Module,
    ids: torch.Tensor,
    batch_size: int,
    device: torch.device | None = None,
) -> torch.Tensor:
    """`model(ids)` in batches of `batch_size`, in the rows' order, on the CPU. The rows
    are moved to `device` batch by batch."""
    margin = padding_margin(model)
    if margin is None:
        outputs = [
            model(ids[start : start + batch_size].to(device, non_blocking=True)).cpu()
            for start in range(0, len(ids), batch_size)
        ]
        return torch.cat(outputs)
    lengths = (ids != 0).sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    out: torch.Tensor | None = None
    for rows in _batches(order, lengths[order], batch_size, exact=margin == 0):
        keep = min(ids.shape[1], max(1, int(lengths[rows].max()) + margin))
        logits = model(ids[rows, :keep].to(device, non_blocking=True)).cpu()
        if out is None:
            out = logits.new_empty(len(ids), logits.shape[1])
        out[rows] = logits
    assert out is not None, "no rows"
    return out


def _batches(
    order: torch.Tensor, sorted_lengths: torch.Tensor, batch_size: int, *, exact: bool
) -> Iterator[torch.Tensor]:
    """Row indices per batch, in length order. With `exact`, a batch never mixes lengths:
    a model that needs no padding then gets none (the LSTM's unpacked, fused path)."""
    if not exact:
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]
        return
    _, counts = torch.unique_consecutive(sorted_lengths, return_counts=True)
    start = 0
    for count in counts.tolist():
        for offset in range(0, count, batch_size):
            yield order[start + offset : start + min(count, offset + batch_size)]
        start += count
