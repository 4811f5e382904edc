"""Tokenizers: characters (the tutorial's default) or words via jieba."""

from __future__ import annotations

import logging
from typing import Protocol

from trainers.config import TokenizerName


class Tokenizer(Protocol):
    name: str

    def __call__(self, text: str) -> list[str]: ...


class CharTokenizer:
    name = "char"

    def __call__(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


class WordTokenizer:
    """jieba word segmentation, with its own `jieba.Tokenizer` (no shared global dictionary)."""

    name = "word"

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()

    def __call__(self, text: str) -> list[str]:
        return [w for w in self._jieba.lcut(text) if not w.isspace()]


def make_tokenizer(name: TokenizerName) -> Tokenizer:
    if name == "char":
        return CharTokenizer()
    if name == "word":
        return WordTokenizer()
    raise ValueError(f"unknown tokenizer {name!r}; choose 'char' or 'word'")
