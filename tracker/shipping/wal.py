"""The write-ahead log of a run: what the caller handed over, on disk before the call returns.

This module holds the log's format, its files and the shipper's state; the training
process's side, `WalWriter`, is in `tracker.shipping.writer`.

A run's log is a folder `<spool>/<run_id>.wal/` of append-only segment files. The training
process appends one line per call with a single `os.write` on an `O_APPEND` descriptor, so a
point whose `log_metrics` call has returned is with the operating system: a SIGKILL of the
training process cannot lose it, and the process holds no queue that grows while the store is
down. The shipper (`tracker.shipping.shipper`) reads the segments and records in `state.json`
how far the store has acknowledged each one, so shipping resumes where it stopped, after any
crash, and never sends an acknowledged record again.

Lines:
- metric points, the hot path, as tab-separated text: `m <ts> <step> (<key> <value>)+`
  (MLflow refuses tabs and newlines in metric names, and the values are `repr(float)`);
- everything else as one JSON object: params `{"t": "p", "items": {...}}`, tags (`"g"`), the
  run's terminal status (`"s"`, with `status` and `end_time`), flush requests (`"f"`) and
  artifact uploads (`"a"`, with `dir`, a folder under `files/` holding a copy of what to
  upload, and `path`, the artifact path in the run).

A line without its newline is a write the caller never saw return (the process died in the
middle): it is ignored. Any other line that does not parse is damage: it is read as a
damaged record (the file, its byte offset, what is wrong, its bytes), and reading goes on
with the next line, so damage costs that line and nothing after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tracker.processes import process_alive
from tracker.shipping.batch import MetricPoint

WAL_SUFFIX = ".wal"
CORRUPT_SUFFIX = ".corrupt"  # a damaged segment, set aside for the user to inspect
SEGMENT_GLOB = "seg-*.log"
STATE_FILE = "state.json"
META_FILE = "meta.json"
LOCK_FILE = "lock"
SHIPPER_LOG = "shipper.log"
FILES_DIR = "files"  # copies of the artifacts waiting in the log to be uploaded
READ_CHUNK = 1 << 20


def wal_dir(spool_dir: Path, run_id: str) -> Path:
    return spool_dir / f"{run_id}{WAL_SUFFIX}"


def pending_wals(spool_dir: Path) -> list[Path]:
    """Run logs under `spool_dir`, oldest first."""
    if not spool_dir.is_dir():
        return []
    found = [p for p in spool_dir.glob(f"*{WAL_SUFFIX}") if (p / META_FILE).is_file()]
    return sorted(found, key=lambda p: (p / META_FILE).stat().st_mtime)


def other_owner(directory: Path) -> int | None:
    """The pid of another live process that has this log open (a run open there), if any."""
    try:
        owner = read_meta(directory).owner_pid
    except (OSError, ValueError, KeyError):
        return None
    if owner == os.getpid() or read_state(directory).done:
        return None
    return owner if process_alive(owner) else None


def metrics_line(ts: int, step: int, pairs: list[tuple[str, float]]) -> bytes:
    """The log line of one `log_metrics` call (the caller's hot path: plain formatting; the
    values are floats already)."""
    body = "\t".join(f"{key}\t{value!r}" for key, value in pairs)
    return f"m\t{ts}\t{step}\t{body}\n".encode()


def json_line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class RunMeta:
    """Which store and run a log belongs to, and the process that writes it."""

    tracking_uri: str
    run_id: str
    owner_pid: int


def write_meta(directory: Path, meta: RunMeta) -> None:
    _write_atomic(directory / META_FILE, json.dumps(asdict(meta)))


def read_meta(directory: Path) -> RunMeta:
    data = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    return RunMeta(str(data["tracking_uri"]), str(data["run_id"]), int(data["owner_pid"]))


@dataclass
class Record:
    kind: str  # "m" points, "p" params, "g" tags, "s" status, "f" flush, "a" artifacts
    points: list[MetricPoint] = field(default_factory=list)
    items: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    end_time: int | None = None
    folder: str | None = None  # "a": the staged copy, relative to the log folder
    artifact_path: str | None = None  # "a": where in the run's artifacts
    damage: str | None = None  # "x", a line that is not a record: where, and what is wrong
    raw: bytes = b""  # "x": the damaged line


def artifact_line(folder: Path, artifact_path: str | None) -> bytes:
    """The log line of an artifact upload whose files were copied to `folder` (`stage`)."""
    relative = f"{folder.parent.name}/{folder.name}"
    return json_line({"t": "a", "dir": relative, "path": artifact_path})


def _parse(line: bytes) -> Record:
    if line.startswith(b"m\t"):
        fields = line.decode("utf-8").split("\t")
        ts, step = int(fields[1]), int(fields[2])
        pairs = fields[3:]
        if not pairs or len(pairs) % 2:
            raise ValueError("metric line without key/value pairs")
        points = [(pairs[i], float(pairs[i + 1]), ts, step) for i in range(0, len(pairs), 2)]
        return Record("m", points=points)
    data = json.loads(line.decode("utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    kind = data["t"]
    if kind in ("p", "g"):
        items = data["items"]
        if not isinstance(items, dict):
            raise TypeError("items must be an object")
        return Record(kind, items={str(k): str(v) for k, v in items.items()})
    if kind == "s":
        end = data.get("end_time")
        return Record("s", status=str(data["status"]), end_time=None if end is None else int(end))
    if kind == "f":
        return Record("f")
    if kind == "a":
        folder, path = str(data["dir"]), data["path"]
        if not folder.startswith(f"{FILES_DIR}/") or ".." in folder or "\\" in folder:
            raise ValueError(f"artifact folder {folder!r} is outside the log")
        return Record("a", folder=folder, artifact_path=None if path is None else str(path))
    raise ValueError(f"unknown record type {kind!r}")


def read_records(path: Path, offset: int) -> Iterator[tuple[int, Record]]:
    """Complete records of segment `path` after byte `offset`, each with the offset just past
    it; a damaged line is a record of kind "x" (file, byte offset, what is wrong)."""
    with path.open("rb") as fh:
        fh.seek(offset)
        tail = b""
        while True:
            chunk = fh.read(READ_CHUNK)
            if not chunk:
                return  # a trailing line without newline: a write that never returned
            data = tail + chunk
            start = 0
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    break
                line = data[start:end]
                try:
                    record = _parse(line)
                except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError) as exc:
                    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                    where = f"{path} (byte {offset + start}): not a log record ({detail})"
                    record = Record("x", damage=where, raw=bytes(line))
                yield offset + end + 1, record
                start = end + 1
            offset += start
            tail = data[start:]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(SEGMENT_GLOB))


def keep_damaged(path: Path, raw: bytes) -> Path:
    """Append a damaged line of segment `path` to a file beside the log in the spool folder
    (the log itself is deleted once shipped), for the user to inspect."""
    aside = path.parent.parent / f"{path.parent.name}-{path.name}{CORRUPT_SUFFIX}"
    with aside.open("ab") as fh:
        fh.write(raw + b"\n")
    return aside


@dataclass
class ShipState:
    """What the shipper has done with a run's log, kept in `state.json` after every batch."""

    acked: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    failures: int = 0
    last_error: str | None = None
    rejected: int = 0
    rejected_path: str | None = None
    rejected_first: str | None = None
    damaged: int = 0  # lines of the log that were not records, kept in `damaged_path`
    damaged_path: str | None = None
    damaged_first: str | None = None
    status_applied: str | None = None
    done: bool = False


def read_state(directory: Path) -> ShipState:
    try:
        data = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return ShipState()
    known = ShipState.__dataclass_fields__
    return ShipState(**{k: v for k, v in data.items() if k in known})


def write_state(directory: Path, state: ShipState) -> None:
    _write_atomic(directory / STATE_FILE, json.dumps(asdict(state), ensure_ascii=False))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(directory: Path, *, wait_s: float) -> Iterator[bool]:
    """Hold the log's lock (one shipper per run at a time); yields False when another
    process still held it after `wait_s` seconds."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)


def unshipped_points(directory: Path, state: ShipState) -> int:
    """Metric points in the log that the store has not acknowledged (damage is skipped)."""
    count = 0
    for seg in segments(directory):
        with contextlib.suppress(FileNotFoundError):
            for _, record in read_records(seg, state.acked.get(seg.name, 0)):
                count += len(record.points)
    return count


def staged_uploads(directory: Path) -> int:
    """Artifact uploads waiting in the log."""
    files = directory / FILES_DIR
    return sum(1 for p in files.iterdir() if p.is_dir()) if files.is_dir() else 0


def disk_bytes(directory: Path) -> int:
    """What the log takes on disk: its segments and the artifacts waiting in it."""
    files = directory / FILES_DIR
    staged = [p for p in files.rglob("*") if p.is_file()] if files.is_dir() else []
    return sum(p.stat().st_size for p in [*segments(directory), *staged])
