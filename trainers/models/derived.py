"""Tensors derived from a model's parameters for inference (tables folded from weights),
kept between batches and remade when a parameter changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import torch

T = TypeVar("T")


def inferring(module: torch.nn.Module) -> bool:
    """In eval mode with no gradient: when the folded tables may stand in for the layers
    they were folded from (the training path keeps the layers, for their gradients)."""
    return not (module.training or torch.is_grad_enabled())


class Derived(Generic[T]):
    """The value `make()` returned for the current state of `params`.

    Keyed on each tensor's storage, in-place version counter and shape, so an optimizer step
    or `load_state_dict` between two evaluations during training remakes it, while the
    batches of one prediction reuse it."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: T | None = None

    def get(self, params: Sequence[torch.Tensor], make: Callable[[], T]) -> T:
        key = tuple((p.data_ptr(), p._version, p.shape) for p in params)
        if self._key != key:
            self._value, self._key = make(), key
        return self._value  # type: ignore[return-value]
