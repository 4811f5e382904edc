"""The vocabulary: built from the training split only, <pad>=0 and <unk>=1."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PAD, UNK = "<pad>", "<unk>"


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str], pad_size: int) -> list[int]:
        """Token ids, cut or right-padded with <pad> to exactly `pad_size`."""
        index = self._index  # type: ignore[attr-defined]
        ids = [index.get(t, 1) for t in tokens[:pad_size]]
        return ids + [0] * (pad_size - len(ids))

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()[:16]


def build_vocab(
    documents: Iterable[Sequence[str]], min_freq: int = 1, max_size: int = 50_000
) -> Vocab:
    """Most frequent tokens first (ties by first appearance), at most `max_size` incl. specials."""
    counts: Counter[str] = Counter()
    for doc in documents:
        counts.update(doc)
    ranked = [t for t, c in counts.most_common() if c >= min_freq]
    return Vocab((PAD, UNK, *ranked[: max(0, max_size - 2)]))
