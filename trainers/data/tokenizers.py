"""Tokenizers: characters (the tutorial's default), words via jieba, or both in one sequence."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Protocol

from trainers.config import TokenizerName
from trainers.data.cache_dir import default_cache_dir
from trainers.data.jieba_dict import compact_segmenter


class Tokenizer(Protocol):
    name: str

    def __call__(self, text: str) -> list[str]: ...


class CharTokenizer:
    name = "char"

    def __call__(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


class WordTokenizer:
    """jieba word segmentation, with its own `jieba.Tokenizer` (no shared global dictionary):
    jieba's full dictionary, or the compact one (`trainers.data.jieba_dict`) under
    `compact_cache`."""

    name = "word"

    def __init__(self, compact_cache: Path | None = None) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = (
            jieba.Tokenizer() if compact_cache is None else compact_segmenter(compact_cache)
        )

    def __call__(self, text: str) -> list[str]:
        return [w for w in self._jieba.lcut(text) if not w.isspace()]

    def starts(self, text: str) -> list[tuple[int, str]]:
        """The words with the position in `text` where each starts."""
        found, position = [], 0
        for word in self._jieba.lcut(text):
            if not word.isspace():
                found.append((position, word))
            position += len(word)
        return found


class CharWordTokenizer:
    """The characters, then jieba's words of two or more characters (the single-character
    words are the characters again). One sequence and one vocabulary, so every model, the
    checkpoint and `predict` take it unchanged: FastText's bag and TextCNN's windows see
    words next to characters (on THUCNews-45k the words lift FastText's accuracy), and
    characters still cover the words jieba never saw in training.

    Segmented with jieba's compact dictionary, which loads faster than the full one for the
    same accuracy (see `trainers.data.jieba_dict`)."""

    name = "char+word"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._chars = CharTokenizer()
        self._words = WordTokenizer(compact_cache=cache_dir or default_cache_dir())

    def __call__(self, text: str) -> list[str]:
        return self._chars(text) + [w for w in self._words(text) if len(w) > 1]


class NgramTokenizer:
    """The linear model's features as tokens: the characters and character bigrams of the
    lower-cased text (whitespace runs as one space, as scikit-learn's `analyzer="char"`) and
    jieba's words, each marked `w:` so that a one-character word is a feature apart from the
    character (the linear model keeps words in a block of their own). The bag models take
    them as they are (`ngrams=1`: no hashed pairs of adjacent tokens).

    Why: FastText on these features, L2-normalised TF-IDF weights (`bag_norm="l2"`) and the
    one-vs-rest hinge loss was more accurate on THUCNews-45k than on the `char+word` sequence
    with its hashed bigrams (character bigrams, word bigrams and the pair across the two
    parts) under either loss (benchmarks/NOTES-models.md)."""

    name = "ngrams"
    _SPACES = re.compile(r"\s\s+")

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._words = WordTokenizer(compact_cache=cache_dir or default_cache_dir())

    def __call__(self, text: str) -> list[str]:
        """In the order of the text (each character, the bigram it starts, the words that
        start there), so that a text cut to `pad_size` tokens keeps all three kinds for the
        part it keeps."""
        chars = self._SPACES.sub(" ", text.lower())
        words = self._words.starts(text)
        tokens: list[str] = []
        next_word = 0
        for i, char in enumerate(chars):
            tokens.append(char)
            if i + 1 < len(chars):
                tokens.append(chars[i : i + 2])
            # Positions in the text, read against the normalised one (a whitespace run made
            # one space shifts them by a little): close enough for where a cut falls.
            while next_word < len(words) and words[next_word][0] <= i:
                tokens.append("w:" + words[next_word][1])
                next_word += 1
        tokens.extend("w:" + word for _, word in words[next_word:])
        return tokens


TOKENIZERS = ("char", "word", "char+word", "ngrams")


def make_tokenizer(name: TokenizerName, cache_dir: Path | None = None) -> Tokenizer:
    """`cache_dir`: where the compact jieba dictionary is kept (newsdesk's cache by default)."""
    if name == "char":
        return CharTokenizer()
    if name == "word":
        return WordTokenizer()
    if name == "char+word":
        return CharWordTokenizer(cache_dir)
    if name == "ngrams":
        return NgramTokenizer(cache_dir)
    raise ValueError(f"unknown tokenizer {name!r}; choose one of {', '.join(TOKENIZERS)}")
