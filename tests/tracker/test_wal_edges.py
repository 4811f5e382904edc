"""The write-ahead log at its edges: a starved shipper, a dead shipper, threads, a full disk,
descriptors, params in one batch. Real processes, signals, files and a real SQLite store."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, WriterConfig

FAST_FLUSH = WriterConfig(flush_interval_s=0.05)


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=uri)
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


@contextlib.contextmanager
def starved(pid: int, *, held_s: float, running_s: float) -> Iterator[None]:
    """Let process `pid` run only `running_s` out of every `held_s + running_s` seconds, as
    a low-priority process gets on a saturated machine (SIGSTOP / SIGCONT)."""
    stop = threading.Event()

    def duty_cycle() -> None:
        while not stop.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stop.wait(held_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            stop.wait(running_s)

    thread = threading.Thread(target=duty_cycle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_starved_shipper_is_waited_for_not_taken_for_a_dead_store(store_uri, tmp_path):
    """Issue 34, item 13: on a saturated machine the shipper (at a lower priority) got no CPU
    for longer than `close_timeout_s`, and close reported the store unavailable while it was
    accepting. Here the shipper runs 50 ms out of every 1.05 s, with 0.3 s of patience."""
    cfg = WriterConfig(flush_interval_s=600.0, wake_threshold=10**9, close_timeout_s=0.3,
                       batch_size=500)
    notes = tmp_path / "notes.txt"
    with notes.open("w") as notify:
        log = TrainingLogger("starved", tracking_uri=store_uri, writer_config=cfg,
                             spool_dir=tmp_path, notify=notify)
        log.log_metrics({"lr": 0.1}, step=0)
        assert log.flush(timeout=60)  # the shipper is up and has its connection
        for step in range(1, 2001):
            log.log_metrics({"lr": 0.1}, step=step)
        with starved(log._shipper.pid, held_s=1.0, running_s=0.05):
            log.close()
    assert log.spool_path is None, notes.read_text()
    assert len(history(store_uri, log.run_id, "lr")) == 2001
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"
    assert "gets little or no CPU time" in notes.read_text()
    assert "not the store's fault" in notes.read_text()


def test_a_store_that_stops_answering_still_ends_the_close_after_its_patience(
    store_uri, tmp_path
):
    """The other side of item 13: a store that keeps the shipper waiting (a database lock held
    by another connection) is given up on after `close_timeout_s`, the points kept."""
    import sqlite3

    db = Path(store_uri.removeprefix("sqlite:///"))
    cfg = WriterConfig(flush_interval_s=600.0, close_timeout_s=1.0)
    log = TrainingLogger("locked", tracking_uri=store_uri, writer_config=cfg, spool_dir=tmp_path,
                         notify=open(os.devnull, "w"))  # noqa: SIM115
    assert log.flush(timeout=60)
    lock = sqlite3.connect(db, isolation_level=None, timeout=60)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for step in range(1, 101):
            log.log_metrics({"lr": 0.1}, step=step)
        started = time.monotonic()
        log.close()
        waited = time.monotonic() - started
    finally:
        lock.execute("COMMIT")
        lock.close()
    assert log.spool_path is not None
    assert waited < 30, waited


@contextlib.contextmanager
def soft_limit(resource_id: int, value: int) -> Iterator[None]:
    import resource

    soft, hard = resource.getrlimit(resource_id)
    resource.setrlimit(resource_id, (value, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource_id, (soft, hard))


def test_a_rollover_that_cannot_open_its_segment_never_writes_into_another_file(
    store_uri, tmp_path
):
    """Item 1: a rollover whose new segment could not be opened (no descriptor left here;
    a full disk or a read-only folder do the same) closed the descriptor but kept its
    number, and the next call wrote a log line into whatever file reused it."""
    import resource

    cfg = WriterConfig(segment_bytes=4096)
    log = TrainingLogger("fd", tracking_uri=store_uri, writer_config=cfg, spool_dir=tmp_path)
    step = 0
    failed = 0
    with soft_limit(resource.RLIMIT_NOFILE, 3):  # no open() can succeed
        while step < 400:  # past the 4 KiB rollover
            step += 1
            try:
                log.log_metrics({"train/loss": 0.5}, step=step)
            except OSError:
                failed += 1
    user_file = tmp_path / "user-checkpoint.txt"
    with user_file.open("w") as fh:
        fh.write("the user's data\n")
        fh.flush()
        for more in range(401, 451):
            log.log_metrics({"train/loss": 0.5}, step=more)
    log.close()
    assert user_file.read_text() == "the user's data\n"
    assert failed == 0, "the point was written; only the new segment could not be opened"
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(1, 451))
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"


def test_several_threads_log_at_once_and_every_point_is_stored_once(store_uri, tmp_path):
    """Item 2: 4 threads logging through one logger with small segments raised `Bad file
    descriptor` and stored points whose calls had raised."""
    cfg = WriterConfig(segment_bytes=16 << 10, flush_interval_s=0.2)
    calls = 5000
    errors: list[BaseException] = []
    with TrainingLogger("threads", tracking_uri=store_uri, writer_config=cfg,
                        spool_dir=tmp_path) as log:

        def work(worker: int) -> None:
            try:
                for step in range(calls):
                    log.log_metrics({f"thread{worker}/loss": float(step)}, step=step)
            except BaseException as exc:  # noqa: BLE001 - counted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for worker in range(4):
        steps = [s for s, _ in history(store_uri, log.run_id, f"thread{worker}/loss")]
        assert steps == list(range(calls)), worker


def test_a_torn_line_after_a_full_disk_loses_nothing_that_was_acknowledged(
    store_uri, tmp_path
):
    """Item 3: a write cut short by a full disk left half a line that glued onto the next
    one once there was space again, and the shipper set the rest of the segment aside:
    points whose calls had returned were never stored. Here the file-size limit cuts the
    write short, as a full disk does (a short write, then an error)."""
    import resource

    cfg = WriterConfig(flush_interval_s=0.1)
    log = TrainingLogger("torn", tracking_uri=store_uri, writer_config=cfg, spool_dir=tmp_path)
    returned: list[int] = []
    messages: list[str] = []
    for step in range(100):
        log.log_metrics({"train/loss": 0.25}, step=step)
        returned.append(step)
    assert log.flush(timeout=60)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
    try:
        with soft_limit(resource.RLIMIT_FSIZE, log._wal.size + 10):
            for step in range(100, 120):
                try:
                    log.log_metrics({"train/loss": 0.25}, step=step)
                    returned.append(step)
                except OSError as exc:
                    messages.append(str(exc))
    finally:
        signal.signal(signal.SIGXFSZ, previous)
    for step in range(120, 400):
        log.log_metrics({"train/loss": 0.25}, step=step)
        returned.append(step)
    log.close()
    assert len(messages) == 20
    assert str(log._wal_dir) in messages[0] and "was not logged" in messages[0], messages[0]
    assert log.spool_path is None
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == returned
    assert not list(tmp_path.glob("*.corrupt"))
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"


def test_a_shipper_that_dies_is_replaced_and_said_so(store_uri, tmp_path):
    """Item 8: with its shipper SIGKILLed, `flush` returned False silently and close blamed
    the store ("store unavailable") while it was fine. The log is intact: a new shipper takes
    over, once for a flush and once during the close, and each death is named once."""
    notes = tmp_path / "notes.txt"
    with notes.open("w") as notify:
        log = TrainingLogger("dies", tracking_uri=store_uri, spool_dir=tmp_path, notify=notify,
                             writer_config=WriterConfig(flush_interval_s=0.05))
        for step in range(100):
            log.log_metrics({"train/loss": 1.0}, step=step)
        assert log.flush(timeout=60)
        first = log._shipper.pid
        os.kill(first, signal.SIGKILL)
        for step in range(100, 200):
            log.log_metrics({"train/loss": 1.0}, step=step)
        assert log.flush(timeout=60)
        os.kill(log._shipper.pid, signal.SIGKILL)
        for step in range(200, 300):
            log.log_metrics({"train/loss": 1.0}, step=step)
        log.close()
    said = notes.read_text()
    assert said.count("was killed by signal 9") == 2, said
    assert f"(pid {first})" in said and "a new one takes over" in said
    assert "store" not in said, said
    assert log.spool_path is None
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(300))
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"


def test_a_disk_still_full_at_the_close_ends_the_run_failed_with_the_reason(server, tmp_path):
    """Item 3, the end: the terminal status itself could not be appended; close raised and
    the run stayed RUNNING. Now the log's points are stored, the run ends FAILED with the
    disk error as its reason, and close says so. (The store is a server elsewhere: a full
    disk under a SQLite store leaves the log to `newsdesk sync`.)"""
    import resource

    store_uri = server.url
    notes = tmp_path / "notes.txt"
    with notes.open("w") as notify:
        log = TrainingLogger("full", tracking_uri=store_uri, writer_config=FAST_FLUSH,
                             spool_dir=str(tmp_path / "spool"), notify=notify)
        for step in range(50):
            log.log_metrics({"train/loss": 0.5}, step=step)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            with soft_limit(resource.RLIMIT_FSIZE, log._wal.size):
                log.close()
        finally:
            signal.signal(signal.SIGXFSZ, previous)
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.info.status == "FAILED"
    assert str(tmp_path / "spool") in run.data.tags["newsdesk.failure_reason"]
    assert f"run {log.run_id} ended FAILED" in notes.read_text()
    assert len(history(store_uri, log.run_id, "train/loss")) == 50
    assert log.spool_path is None and not log._wal_dir.exists()


def test_a_param_given_a_second_value_is_refused_never_merged_away(store_uri, tmp_path):
    """Item 7: two `log_params` with different values for one key in one batch were merged,
    the first silently replaced; in two batches the store refused the second. The outcome
    depended on timing. Now the logger refuses the change at the call; and a log that holds
    both (written by two processes of a run) sends them apart, so the store refuses the
    second whatever the timing, and the run ends FAILED with the refusal kept."""
    import pytest

    from tracker.shipping.shipper import Shipper
    from tracker.shipping.sync import ship_all
    from tracker.shipping.wal import RunMeta, WalWriter, json_line

    with TrainingLogger("params", tracking_uri=store_uri, spool_dir=tmp_path) as log:
        log.log_params({"train": {"lr": 0.1}})
        log.log_params({"train": {"lr": 0.1}})  # the same value again is fine
        with pytest.raises(ValueError, match=r"param 'train.lr' .* logged as '0.1'.*'0.2'"):
            log.log_params({"train": {"lr": 0.2}})
    client = MlflowClient(tracking_uri=store_uri)
    assert client.get_run(log.run_id).data.params == {"train.lr": "0.1"}
    assert client.get_run(log.run_id).info.status == "FINISHED"

    run = client.create_run(client.get_experiment_by_name("params").experiment_id)
    directory = tmp_path / "two-writers" / f"{run.info.run_id}.wal"
    meta = RunMeta(store_uri, run.info.run_id, os.getpid())
    for value in ("0.1", "0.2"):  # two writers of one run, one line each
        wal = WalWriter(directory, meta, 1 << 20)
        wal.write(json_line({"t": "p", "items": {"lr": value}}))
        wal.close()
    wal = WalWriter(directory, meta, 1 << 20)
    wal.write(json_line({"t": "s", "status": "FINISHED", "end_time": 1}))
    wal.close()
    shipper = Shipper.to_mlflow(directory, WriterConfig(), notify=open(os.devnull, "w"))  # noqa: SIM115
    assert ship_all(shipper)
    assert shipper.state.rejected == 1
    finished = client.get_run(run.info.run_id)
    assert finished.data.params == {"lr": "0.1"}
    assert finished.info.status == "FAILED"
