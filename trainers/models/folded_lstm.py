"""Inference for the LSTM classifier's single bidirectional layer, with its input projection
folded into a per-token table.

`nn.LSTM` multiplies every position's embedding by the input weights (200 x 256 per
direction) before its recurrence (64 x 256): three quarters of the work. With no gradient,
`embedding @ W_ih.T + b` is a fixed table of [vocabulary, 4 * hidden] per direction, so a
position's input gates are a lookup and only the recurrence is left to compute. Both
directions run in one batched matrix product per step."""

from __future__ import annotations

import torch
from torch import nn

from trainers.models.derived import Derived


def foldable(lstm: nn.LSTM) -> bool:
    """The layout this module computes: one bidirectional, batch-first layer."""
    return (
        lstm.num_layers == 1
        and lstm.bidirectional
        and lstm.batch_first
        and lstm.bias
        and lstm.proj_size == 0
    )


class FoldedBiLSTM:
    """Max-pooled states of a bidirectional LSTM over token ids, equal to `nn.LSTM` on the
    packed sequence (to float rounding; tested against it)."""

    def __init__(self) -> None:
        self._table: Derived[tuple[torch.Tensor, torch.Tensor]] = Derived()

    def max_pooled(self, lstm: nn.LSTM, embedding: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """[B, T] right-padded ids (0 = padding) -> [B, 2 * hidden]: each direction's states,
        max-pooled over the text's own positions; zeros for a text with none."""
        gates, recurrent = self._table.get(
            (embedding, *lstm.parameters()), lambda: _gate_table(lstm, embedding)
        )
        hidden, vocab = lstm.hidden_size, embedding.shape[0]
        batch, steps = ids.shape
        # [T, 2, B, 4H] in one gather: at step t the forward direction reads position t, the
        # backward one position T - 1 - t, from its half of the table.
        inputs = gates[torch.stack([ids.T, ids.flip(1).T + vocab], dim=1)]
        present = ids != 0
        padded = not bool(present.all())
        if padded:
            # [T, 2, B, 1]: 1 where the step reads a real token of that text (texts are
            # right-padded). Off it, the backward direction's state is held at zero, so it
            # starts at each text's last token, and the penalty keeps the step out of the max
            # (states are in (-1, 1)); a text with no token ends at zero.
            real = torch.stack([present.T, present.flip(1).T], dim=1).unsqueeze(-1)
            valid = real.to(inputs.dtype)
            penalty = (valid - 1.0) * 4.0
        h = inputs.new_zeros(2, batch, hidden)
        c = inputs.new_zeros(2, batch, hidden)
        pooled = inputs.new_full((2, batch, hidden), -4.0)
        for t in range(steps):
            # One sigmoid for the four gates (PyTorch's order: input, forget, cell, output);
            # the cell gate's columns were doubled, so tanh(x) = 2 * sigmoid(2x) - 1.
            i, f, z, o = torch.sigmoid(torch.baddbmm(inputs[t], h, recurrent)).split(hidden, -1)
            c = torch.addcmul(torch.addcmul(-i, f, c), i, z, value=2.0)
            if padded:
                c = c * valid[t]
            h = o * torch.tanh(c)
            pooled = torch.maximum(pooled, h + penalty[t] if padded else h)
        features = torch.cat([pooled[0], pooled[1]], dim=1)
        return features.masked_fill(features <= -2.0, 0.0)


def _gate_table(lstm: nn.LSTM, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[2 * vocab, 4H]: every token's input gates, both biases included, the forward
    direction's rows first; and [2, H, 4H]: the recurrent weights, transposed for `baddbmm`.
    The cell gate's columns of both are doubled (see `max_pooled`)."""
    hidden = lstm.hidden_size
    w_ih = torch.stack([lstm.weight_ih_l0, lstm.weight_ih_l0_reverse])
    bias = torch.stack(
        [
            lstm.bias_ih_l0 + lstm.bias_hh_l0,
            lstm.bias_ih_l0_reverse + lstm.bias_hh_l0_reverse,
        ]
    )
    table = torch.baddbmm(bias.unsqueeze(1), embedding.expand(2, -1, -1), w_ih.transpose(1, 2))
    recurrent = torch.stack([lstm.weight_hh_l0, lstm.weight_hh_l0_reverse]).transpose(1, 2)
    recurrent = recurrent.contiguous()
    # Doubled in place on the weights' own device: a separate CPU scale tensor broke the
    # LSTM's first evaluation on a GPU.
    cell = slice(2 * hidden, 3 * hidden)
    table[..., cell] *= 2.0
    recurrent[..., cell] *= 2.0
    return table.reshape(-1, 4 * hidden), recurrent
