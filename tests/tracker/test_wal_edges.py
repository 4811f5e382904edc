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
from tracker.processes import scheduler_state

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
    from tracker.shipping.wal import RunMeta, json_line
    from tracker.shipping.writer import WalWriter

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


def test_segments_the_store_has_taken_are_deleted_while_the_run_goes_on(store_uri, tmp_path):
    """Item 12: shipped segments stayed until the close (600,000 points left 9.9 MB), so the
    log grew for the whole run. Now the disk holds about what the store has not taken."""
    cfg = WriterConfig(segment_bytes=4096, flush_interval_s=0.05)
    with TrainingLogger("segments", tracking_uri=store_uri, writer_config=cfg,
                        spool_dir=tmp_path) as log:
        for step in range(20_000):
            log.log_metrics({"train/loss": 0.5}, step=step)
        assert log.flush(timeout=120)
        left = sorted(p.name for p in log._wal_dir.glob("seg-*.log"))
        assert len(left) <= 2, left
        for step in range(20_000, 20_100):
            log.log_metrics({"train/loss": 0.5}, step=step)
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(20_100))


def _stored_100(log: TrainingLogger) -> TrainingLogger:
    """`log` once steps 0-99 of `train/loss` are logged and stored."""
    for step in range(100):
        log.log_metrics({"train/loss": 0.5}, step=step)
    assert log.flush(timeout=60)
    return log


def test_a_damaged_line_in_the_live_segment_costs_that_line_only(store_uri, tmp_path):
    """Item 4: damage in the segment being written made the live shipper rename it away;
    every later point and the close went into the renamed file, `flush` never returned and
    the run stayed RUNNING. Now the damaged line alone is kept aside, everything else is
    stored, and the run ends FAILED with the damage named in a tag and at the close."""
    notes = tmp_path / "notes.txt"
    with notes.open("w") as notify:
        log = _stored_100(TrainingLogger("damaged", tracking_uri=store_uri, spool_dir=tmp_path,
                                         writer_config=FAST_FLUSH, notify=notify))
        with (log._wal_dir / log._wal.segment).open("ab") as segment:
            segment.write(b"\x00 not a record \xff\n")  # another program wrote here
        for step in range(100, 200):
            log.log_metrics({"train/loss": 0.5}, step=step)
        assert log.flush(timeout=30)
        log.close()
    said = notes.read_text()
    assert "1 lines of the log of run" in said and "were damaged" in said, said
    [kept] = tmp_path.glob("*.corrupt")
    assert kept.read_bytes() == b"\x00 not a record \xff\n"
    assert str(kept) in said
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(200))
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.info.status == "FAILED"
    assert str(kept) in run.data.tags["newsdesk.damaged_log"]


def test_a_log_folder_deleted_mid_run_is_made_again_and_nothing_is_lost(store_uri, tmp_path):
    """Item 6: the log folder deleted while the run was open: 2,000 later points were lost
    silently, close said they were "kept in" the deleted path, and the run stayed RUNNING.
    The writer notices (every 64 KiB written, at a flush and at the close), makes the folder
    again from the open segment, and a new shipper ships it; the store skips what it has."""
    import shutil

    notes = tmp_path / "notes.txt"
    with notes.open("w") as notify:
        log = TrainingLogger("vanished", tracking_uri=store_uri, writer_config=FAST_FLUSH,
                             spool_dir=tmp_path / "spool", notify=notify)
        for step in range(100):
            log.log_metrics({"train/loss": 0.5}, step=step)
        assert log.flush(timeout=60)
        shutil.rmtree(log._wal_dir)
        for step in range(100, 2100):
            log.log_metrics({"train/loss": 0.5}, step=step)
        assert log.flush(timeout=60)
        shutil.rmtree(log._wal_dir)
        for step in range(2100, 2200):
            log.log_metrics({"train/loss": 0.5}, step=step)
        log.close()
    said = notes.read_text()
    assert said.count("was deleted while the run was open") == 2, said
    assert log.spool_path is None and not log._wal_dir.exists()
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(2200))
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"


def test_a_log_folder_that_cannot_be_made_is_refused_before_the_run_exists(store_uri, tmp_path):
    """Item 6: a spool folder that cannot be written gave a clear error, but only after the
    run was created, and the run stayed RUNNING."""
    import pytest

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=f"cannot write run logs in {blocker}/spool"):
        TrainingLogger("unwritable", tracking_uri=store_uri, spool_dir=blocker / "spool")
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name("unwritable")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    assert runs == []


def _logging_process(script: str, store_uri: str, spool: Path):
    import subprocess
    import sys
    import textwrap

    # The tracker this test imports, whatever the installed one is.
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "STORE": store_uri, "SPOOL": str(spool), "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )


def test_a_run_open_in_another_live_process_is_not_reopened(store_uri, tmp_path):
    """Item 5: two processes on one run id: when the first closed, it deleted the second's
    live segment (429 of 600 points lost) and ended the run FINISHED while the second still
    logged. Reopening a run whose process is alive is refused, naming the process."""
    import pytest

    spool = tmp_path / "spool"
    first = _logging_process(
        """
        import os, sys
        from pathlib import Path
        from tracker import TrainingLogger
        with TrainingLogger("two", tracking_uri=os.environ["STORE"],
                            spool_dir=Path(os.environ["SPOOL"])) as log:
            for step in range(300):
                log.log_metrics({"train/loss": 1.0}, step=step)
            print(log.run_id, flush=True)
            sys.stdin.readline()
            for step in range(300, 600):
                log.log_metrics({"train/loss": 1.0}, step=step)
        """,
        store_uri,
        spool,
    )
    run_id = first.stdout.readline().strip()
    with pytest.raises(ValueError, match=f"run {run_id} is open in process {first.pid}"):
        TrainingLogger("two", tracking_uri=store_uri, spool_dir=spool, run_id=run_id)
    first.communicate("\n", timeout=120)
    assert first.returncode == 0
    assert [s for s, _ in history(store_uri, run_id, "train/loss")] == list(range(600))
    assert MlflowClient(tracking_uri=store_uri).get_run(run_id).info.status == "FINISHED"


def test_an_orphan_shipper_leaves_a_reopened_run_and_its_log_alone(server, tmp_path):
    """Item 5: a trainer killed while its shipper waited out a store outage; the run was
    reopened (`newsdesk resume`); the orphan then ended the *live* run FAILED with
    `process_died` and deleted the whole log, the new process's segment with it. Now the
    orphan sees the run taken over and stops; the new process's shipper ships both."""
    from tracker.shipping.wal import read_state, wal_dir

    spool = tmp_path / "spool"
    first = _logging_process(
        """
        import os, sys, time
        from pathlib import Path
        from tracker import TrainingLogger, WriterConfig
        cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=2.0, backoff_max_s=2.0)
        log = TrainingLogger("orphan", tracking_uri=os.environ["STORE"],
                             spool_dir=Path(os.environ["SPOOL"]), writer_config=cfg)
        for step in range(20):
            log.log_metrics({"train/loss": 1.0}, step=step)
        assert log.flush(timeout=60)
        print(log.run_id, log._shipper.pid, flush=True)
        sys.stdin.readline()  # the store is down now
        for step in range(20, 45):
            log.log_metrics({"train/loss": 1.0}, step=step)
        log.flush(timeout=0.5)
        print("logged", flush=True)
        time.sleep(600)
        """,
        server.url,
        spool,
    )
    run_id, orphan = first.stdout.readline().split()
    orphan = int(orphan)
    server.kill()
    first.stdin.write("\n")
    first.stdin.flush()
    assert first.stdout.readline().strip() == "logged"
    directory = wal_dir(spool, run_id)
    deadline = time.monotonic() + 60
    while read_state(directory).failures < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # the shipper failed once and waits out its backoff
    # Held still (as a request hanging on a dead server holds it) until the run is reopened:
    # however slow the machine, it acts only once the run is open again.
    os.kill(orphan, signal.SIGSTOP)
    first.kill()  # SIGKILL: its shipper is orphaned
    first.wait()
    server.start()

    log = TrainingLogger("orphan", tracking_uri=server.url, spool_dir=spool, run_id=run_id,
                         writer_config=WriterConfig(flush_interval_s=0.05))
    for step in range(45, 50):
        log.log_metrics({"train/loss": 2.0}, step=step)
    os.kill(orphan, signal.SIGCONT)  # its backoff is over: it tries the store again now
    deadline = time.monotonic() + 60
    while scheduler_state(orphan) not in (None, "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.05)  # until it has ended (not our child: nothing to wait for)
    for step in range(50, 60):
        log.log_metrics({"train/loss": 2.0}, step=step)
    log.close()
    client = MlflowClient(tracking_uri=server.url)
    assert [s for s, _ in history(server.url, run_id, "train/loss")] == list(range(60))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert "newsdesk.process_died" not in run.data.tags
    assert log.spool_path is None


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """No entry can be made in `folder` (the files in it can still be written): immutable for
    root, who ignores permissions; mode 0555 for anyone else."""
    import subprocess

    import pytest

    root = os.geteuid() == 0
    if root:
        import shutil

        if shutil.which("chattr") is None:
            pytest.skip("root cannot make a folder read-only without chattr (e2fsprogs)")
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:  # a file system without the immutable flag: nothing else works
            pytest.skip(f"root cannot make {folder} read-only here: {done.stderr.strip()}")
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_a_read_only_log_folder_names_the_cause_and_leaves_no_run_running(store_uri, tmp_path):
    """Item 6: a log folder made immutable mid-run: the real EPERM surfaced as EBADF from
    close, the shipper crashed on state.json with the traceback only in its own log, and the
    run stayed RUNNING. Now the shipper's death and its cause are named, the run ends FAILED
    with what is missing in `newsdesk.unshipped`, and once the folder is writable again
    `newsdesk sync` stores the rest, ends the run as the log says and removes the tag."""
    from tracker.cli import main

    notes = tmp_path / "notes.txt"
    spool = tmp_path / "spool"
    cfg = WriterConfig(flush_interval_s=0.05, segment_bytes=4096)
    with notes.open("w") as notify:
        log = _stored_100(TrainingLogger("readonly", tracking_uri=store_uri, spool_dir=spool,
                                         writer_config=cfg, notify=notify))
        with read_only_folder(log._wal_dir):
            for step in range(100, 400):  # past a rollover, which cannot make its segment
                log.log_metrics({"train/loss": 0.5}, step=step)
            assert not log.flush(timeout=60)
            log.close()
    said = notes.read_text()
    assert "state.json" in said and ("Operation not permitted" in said or "denied" in said), said
    assert "newsdesk sync" in said
    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(log.run_id)
    assert run.info.status == "FAILED"
    assert "newsdesk sync" in run.data.tags["newsdesk.unshipped"]

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 0
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(400))
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert "newsdesk.unshipped" not in run.data.tags


class _Watched:
    """A stderr that keeps what is written and sets `said` once `words` appear in it."""

    def __init__(self, words: str) -> None:
        self.words, self.text, self.said = words, "", threading.Event()

    def write(self, text: str) -> int:
        self.text += text
        if self.words in self.text:
            self.said.set()
        return len(text)

    def flush(self) -> None:
        pass


def test_sync_says_it_waits_for_the_shipper_of_a_dead_process(store_uri, tmp_path, monkeypatch):
    """Item 5: `newsdesk resume` (which syncs first) waited up to 60 s for the log lock of a
    dead process's shipper without saying so. Here another process holds the lock until
    sync has said that it waits."""
    import subprocess
    import sys

    from tracker.cli import main
    from tracker.shipping.wal import LOCK_FILE, RunMeta, metrics_line, wal_dir
    from tracker.shipping.writer import WalWriter

    client = MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run(client.create_experiment("held")).info.run_id
    spool = tmp_path / "spool"
    directory = wal_dir(spool, run_id)
    dead = 2**22 + 1  # above the default pid_max: no such process
    writer = WalWriter(directory, RunMeta(store_uri, run_id, dead), 1 << 20)
    for step in range(50):
        writer.write(metrics_line(1000 + step, step, [("train/loss", 0.5)]))
    writer.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(directory / LOCK_FILE)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    err = _Watched("waiting up to")
    monkeypatch.setattr(sys, "stderr", err)

    def release() -> None:
        if err.said.wait(timeout=120):
            holder.stdin.write("\n")
            holder.stdin.flush()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 0
    finally:
        err.said.set()
        releaser.join()
        holder.communicate(timeout=30)
    said = err.text
    assert f"the shipper of process {dead}, which has ended, still holds the log of run" in said
    assert "waiting up to 60s" in said
    assert [s for s, _ in history(store_uri, run_id, "train/loss")] == list(range(50))


def test_a_flush_line_that_fills_its_segment_is_waited_for_in_that_segment(tmp_path):
    """A flush waits until the store acknowledged its line's end; when that line fills its
    segment, the mark must name that segment, not the next one (where offset 0 is reached
    at once, and the flush would return before the points are stored)."""
    from tracker.shipping.wal import RunMeta, json_line, segments
    from tracker.shipping.writer import WalWriter

    points, flush = b"m\t1\t1\ttrain/loss\t0.5\n" * 2, json_line({"t": "f"})
    size = len(points) + len(flush)  # the flush line fills the segment exactly
    writer = WalWriter(tmp_path / "log", RunMeta("sqlite:///x.db", "run", os.getpid()), size)
    first = writer.segment
    writer.write(points)
    assert writer.write_marked(flush) == (first, size)
    assert writer.segment != first, "the flush line filled the segment: a new one began"
    assert [p.name for p in segments(tmp_path / "log")] == sorted([first, writer.segment])
    writer.close()
