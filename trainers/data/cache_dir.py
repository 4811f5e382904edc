"""Where newsdesk keeps what it derives once per machine (tokenized splits, encoded tensors,
the compact jieba dictionary). Its own module, free of torch and numpy, so a tokenizer can
name it without loading the training stack."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("NEWSDESK_CACHE", Path.home() / ".cache" / "newsdesk"))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """`write` fills a temporary file next to `path`, which then replaces `path` in one step:
    a reader (another process sharing the cache) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    tmp.replace(path)
