"""On-disk caches: tokenized splits and encoded tensors, keyed by content, never by file name.

Tokenizing with jieba costs seconds per 10,000 headlines, so each split is tokenized once; the
key is the split's content hash plus the tokenizer, so an edited file is never served stale.
Token lists are stored as one UTF-8 byte array (loaded with allow_pickle=False), sized by the
tokens themselves: a fixed-width string array would be rows × longest line, 5 GiB for one
50 MB line. Tensors are stored with torch.save (loaded with weights_only=True): nothing in the
cache can run code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from trainers.data.cache_dir import atomic_write, default_cache_dir

__all__ = ["cache_key", "cached_tensor", "cached_tokens", "default_cache_dir"]

SEP = "\x1f"  # between the tokens of one text
ROW_SEP = "\x1e"  # between texts
CACHE_VERSION = "4"  # 4: the ngrams tokenizer in text order (3: compact jieba dictionary)


def cache_key(*parts: str) -> str:
    return hashlib.sha256("|".join((CACHE_VERSION, *parts)).encode()).hexdigest()[:24]


def cached_tokens(
    cache_dir: Path, key: str, texts: list[str], tokenize: Callable[[str], list[str]]
) -> list[list[str]]:
    path = cache_dir / f"tokens-{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            rows = data["utf8"].tobytes().decode("utf-8").split(ROW_SEP)
        return [row.split(SEP) if row else [] for row in rows]
    docs = [tokenize(t) for t in texts]
    joined = ROW_SEP.join(SEP.join(d) for d in docs).encode("utf-8")

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, utf8=np.frombuffer(joined, dtype=np.uint8))

    atomic_write(path, write)
    return docs


def cached_tensor(cache_dir: Path, key: str, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    path = cache_dir / f"ids-{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    tensor = build()
    atomic_write(path, lambda tmp: torch.save(tensor, tmp))
    return tensor
