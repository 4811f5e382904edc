"""Encoding many texts with a forked child for half of them: the same ids in the same order
as one process, and a child that fails or hangs costs only time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from trainers.data.fork_encode import MIN_PARALLEL, encode_all, usable_cores
from trainers.data.tokenizers import make_tokenizer
from trainers.data.vocab import build_vocab

pytestmark = pytest.mark.skipif(
    usable_cores() < 2 or not hasattr(os, "fork"), reason="needs fork and two cores"
)


@pytest.fixture(scope="module")
def headlines(thucnews_dir):
    lines = (thucnews_dir / "test.txt").read_text(encoding="utf-8").splitlines()
    return [line.rsplit("\t", 1)[0] for line in lines[: 2 * MIN_PARALLEL + 11]]


def _encoder(headlines):
    tokenize = make_tokenizer("char")
    vocab = build_vocab(tokenize(t) for t in headlines[::3])
    return lambda text: vocab.encode(tokenize(text), 24)


def test_a_forked_half_gives_the_ids_of_one_process_in_order(headlines):
    encode = _encoder(headlines)
    both = encode_all(headlines, encode, 24)
    alone = np.array([encode(t) for t in headlines])
    assert both.dtype == np.int64 and both.shape == (len(headlines), 24)
    np.testing.assert_array_equal(both, alone)


@pytest.mark.parametrize("failure", ["raises", "hangs"])
def test_a_child_that_fails_or_hangs_is_replaced_by_this_process(headlines, failure):
    encode = _encoder(headlines)
    parent = os.getpid()

    def child_fails(text: str) -> list[int]:
        if os.getpid() != parent:
            if failure == "raises":
                raise RuntimeError("the child breaks")
            time.sleep(3600)
        return encode(text)

    before = _children()
    started = time.monotonic()
    ids = encode_all(headlines, child_fails, 24, grace_s=0.5)
    np.testing.assert_array_equal(ids, np.array([encode(t) for t in headlines]))
    assert time.monotonic() - started < 60
    assert _children() == before  # the child was stopped and reaped: no zombie left


def _children() -> set[int]:
    """This process's children, alive or zombie (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found
