"""Where newsdesk keeps what it derives once per machine (tokenized splits, encoded tensors,
the compact jieba dictionary). Its own module, free of torch and numpy, so a tokenizer can
name it without loading the training stack."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("NEWSDESK_CACHE", Path.home() / ".cache" / "newsdesk"))
