"""The shipping rules, fast: a real write-ahead log on disk, shipped through a sender that the
test drives (the `Sender` a `Shipper` is given), so that each rule is checked without a store.

The same rules against real stores (SQLite, a killed `mlflow server`, PostgreSQL) are in
`tests/tracker/test_wal.py`, `test_sync.py`, `test_http_store.py` and `tests/server/`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from tracker.schema import REJECTED_TAG
from tracker.shipping.config import WriterConfig
from tracker.shipping.shipper import Shipper
from tracker.shipping.sync import ship_all
from tracker.shipping.wal import (
    RunMeta,
    artifact_line,
    json_line,
    metrics_line,
    read_state,
)
from tracker.shipping.writer import WalWriter
from tracker.store.mlflow_internals import MAX_METRICS_PER_BATCH

FAST = WriterConfig(backoff_initial_s=0.001, backoff_max_s=0.002, close_timeout_s=5.0)


class ScriptedSender:
    """A store that the test scripts: it records every request it took, fails the next
    `transient` requests, refuses for good any request holding a key in `refused`, and can
    take a request but lose the answer (`lose_answers`)."""

    parallel = False

    def __init__(self) -> None:
        self.requests: list[tuple[list, dict, dict]] = []
        self.uploads: list[tuple[str, str | None]] = []
        self.events: list[str] = []
        self.tags: dict[str, str] = {}
        self.ended: list[tuple[str, int | None]] = []
        self.transient = 0
        self.lose_answers = 0
        self.refused: set[str] = set()
        self.open = True

    def send(self, metrics: Sequence, params: dict, tags: dict) -> None:
        if self.transient:
            self.transient -= 1
            raise ConnectionError("store unreachable")
        keys = {m[0] for m in metrics} | set(params) | set(tags)
        if keys & self.refused:
            raise MlflowException("refused", error_code="INVALID_PARAMETER_VALUE")
        self.requests.append((list(metrics), dict(params), dict(tags)))
        self.events.append(f"send {len(metrics)}")
        if self.lose_answers:
            self.lose_answers -= 1
            raise ConnectionError("response lost")

    def upload(self, folder: Path, artifact_path: str | None) -> None:
        names = sorted(p.name for p in folder.iterdir())
        self.uploads.append((",".join(names), artifact_path))
        self.events.append("upload")

    def set_tag(self, key: str, value: str) -> None:
        self.tags[key] = value

    def run_is_open(self) -> bool:
        return self.open

    def end_run(self, status: str, end_time: int | None) -> bool:
        self.ended.append((status, end_time))
        self.open = False
        return True

    def is_permanent(self, exc: BaseException) -> bool:
        return isinstance(exc, MlflowException)

    def single_attempts(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    @property
    def points(self) -> list[tuple]:
        return [p for metrics, _, _ in self.requests for p in metrics]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "run1.wal"


def write_log(directory: Path, lines: list[bytes], segment_bytes: int = 16 << 20) -> None:
    wal = WalWriter(directory, RunMeta("fake://store", "run1", os.getpid()), segment_bytes)
    for line in lines:
        wal.write(line)
    wal.close()


def points(n: int, start: int = 0) -> list[bytes]:
    return [metrics_line(1000 + i, i, [("train/loss", 1.0 / (i + 1))]) for i in range(start, n)]


FINISHED = json_line({"t": "s", "status": "FINISHED", "end_time": 5})


def shipper(directory: Path, sender: ScriptedSender, config: WriterConfig = FAST) -> Shipper:
    return Shipper(directory, config, sender, notify=open(os.devnull, "w"))  # noqa: SIM115


def test_every_point_is_sent_once_in_requests_that_fit_the_store(log_dir):
    write_log(log_dir, [*points(2500), FINISHED], segment_bytes=20_000)  # several segments
    sender = ScriptedSender()
    assert ship_all(shipper(log_dir, sender))
    assert [p[3] for p in sender.points] == list(range(2500))
    assert all(len(metrics) <= MAX_METRICS_PER_BATCH for metrics, _, _ in sender.requests)
    assert sender.ended == [("FINISHED", 5)]
    assert read_state(log_dir).done


def test_a_store_that_fails_for_a_while_gets_every_point_once(log_dir):
    write_log(log_dir, [*points(10), FINISHED])
    sender = ScriptedSender()
    sender.transient = 3
    ship = shipper(log_dir, sender)
    assert ship_all(ship)
    assert [p[3] for p in sender.points] == list(range(10))
    assert ship.state.failures == 3 and ship.state.last_error is None


def test_a_lost_answer_sends_the_same_points_again_for_the_store_to_recognise(log_dir):
    """The store took the request but the shipper never heard: the retry carries the same
    (key, value, timestamp, step), which MLflow's store deduplicates."""
    write_log(log_dir, [*points(3), FINISHED])
    sender = ScriptedSender()
    sender.lose_answers = 1
    assert ship_all(shipper(log_dir, sender))
    first, second = sender.requests
    assert first == second and len(first[0]) == 3


def test_a_refused_entry_is_split_off_kept_and_the_rest_is_stored(log_dir):
    lines = [
        *points(4),
        json_line({"t": "p", "items": {"model.lr": "0.1", "model.bad": "x"}}),
        json_line({"t": "g", "items": {"note": "kept"}}),
        FINISHED,
    ]
    write_log(log_dir, lines)
    sender = ScriptedSender()
    sender.refused = {"model.bad"}
    ship = shipper(log_dir, sender)
    assert ship_all(ship)
    params = {k: v for _, p, _ in sender.requests for k, v in p.items()}
    tags = {k: v for _, _, t in sender.requests for k, v in t.items()}
    assert params == {"model.lr": "0.1"} and tags == {"note": "kept"}
    assert len(sender.points) == 4
    assert ship.state.rejected == 1
    rejected = Path(ship.state.rejected_path).read_text(encoding="utf-8")
    assert "model.bad" in rejected and "model.lr" not in rejected
    assert sender.ended[0][0] == "FAILED"  # FINISHED, but part of what it logged is missing
    assert "1 entries" in sender.tags[REJECTED_TAG]


def test_acknowledged_batches_are_not_sent_again_by_the_next_shipper(log_dir):
    """A shipper that stops mid-log (its store down, its patience spent) leaves the
    acknowledged positions on disk; the next one sends only what was not acknowledged."""
    write_log(log_dir, points(5))
    sender = ScriptedSender()
    first = shipper(log_dir, sender)
    first.fill()
    assert first.ship_pending(give_up=lambda: True)
    more = WalWriter(log_dir, RunMeta("fake://store", "run1", os.getpid()), 16 << 20)
    for line in [*points(8, start=5), FINISHED]:
        more.write(line)
    more.close()
    sender.transient = 1
    second = shipper(log_dir, sender)
    second.fill()
    assert not second.ship_pending(give_up=lambda: True)  # the store is down: nothing acked
    third = shipper(log_dir, sender)
    assert ship_all(third)
    assert [p[3] for p in sender.points] == list(range(8))


def test_points_before_an_artifact_are_stored_before_its_upload(log_dir):
    write_log(log_dir, [])
    wal = WalWriter(log_dir, RunMeta("fake://store", "run1", os.getpid()), 16 << 20)
    for line in points(2):
        wal.write(line)
    folder = wal.stage()
    (folder / "confusion.png").write_bytes(b"png")
    wal.write(artifact_line(folder, "figures"))
    for line in [*points(4, start=2), FINISHED]:
        wal.write(line)
    wal.close()
    sender = ScriptedSender()
    assert ship_all(shipper(log_dir, sender))
    assert sender.events == ["send 2", "upload", "send 2"]
    assert sender.uploads == [("confusion.png", "figures")]
    assert not folder.exists()


def test_the_run_ends_with_the_status_the_log_holds(log_dir):
    write_log(log_dir, [*points(1), json_line({"t": "s", "status": "KILLED", "end_time": 9})])
    sender = ScriptedSender()
    assert ship_all(shipper(log_dir, sender))
    assert sender.ended == [("KILLED", 9)]


def test_a_dead_owners_log_ends_its_run_failed_and_says_why(log_dir, tmp_path):
    dead = _dead_pid()
    wal = WalWriter(log_dir, RunMeta("fake://store", "run1", dead), 16 << 20)
    for line in points(3):
        wal.write(line)
    wal.close()
    sender = ScriptedSender()
    assert ship_all(shipper(log_dir, sender))
    assert len(sender.points) == 3
    assert sender.ended[0][0] == "FAILED"
    assert f"process {dead} ended without closing" in next(iter(sender.tags.values()))


def test_a_store_that_stays_down_raises_after_the_patience(log_dir):
    from tracker.shipping.shipper import ShipError

    write_log(log_dir, [*points(2), FINISHED])
    sender = ScriptedSender()
    sender.transient = 10**9
    config = WriterConfig(backoff_initial_s=0.001, backoff_max_s=0.002, close_timeout_s=0.2)
    with pytest.raises(ShipError, match="store unreachable"):
        ship_all(shipper(log_dir, sender, config))
    assert sender.points == [] and read_state(log_dir).acked == {}


def _dead_pid() -> int:
    """The pid of a child that has exited and been reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
