"""The write-ahead log and its shipper with real processes and signals: a SIGKILL of a plain
loop, a store that stays down for a million points, damaged segments beside good ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker.cli import main
from tracker.shipping.wal import RunMeta, metrics_line, segments, wal_dir
from tracker.shipping.writer import WalWriter

PLAIN_LOOP = """
import os, sys, time
from tracker import TrainingLogger, WriterConfig
# Nothing is sent before the kill: the points exist only in the log on disk.
config = WriterConfig(flush_interval_s=600.0, wake_threshold=10**9)
log = TrainingLogger("plain", tracking_uri=os.environ["STORE"], writer_config=config)
print(log.run_id, flush=True)
for step in range(1, 1001):
    log.log_metrics({"train/loss": 1.0 / step}, step=step)
print("logged 1000", flush=True)
time.sleep(600)
"""


def _steps(uri: str, run_id: str, key: str = "train/loss") -> list[int]:
    return sorted(m.step for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key))


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "loop.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.slow
def test_sigkill_of_a_plain_loop_after_its_1000th_call_loses_no_point(store_uri, tmp_path, capsys):
    proc = subprocess.Popen(
        [sys.executable, str(_script(tmp_path, PLAIN_LOOP))],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "STORE": store_uri},
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "logged 1000"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert main(["sync", "--tracking-uri", store_uri]) == 0
    capsys.readouterr()
    stored = _steps(store_uri, run_id)
    print(f"SIGKILL 0.5 s after the 1,000th call, then sync: {len(stored)} points stored")
    assert stored == list(range(1, 1001))
    run = MlflowClient(tracking_uri=store_uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert "ended without closing its logger" in run.data.tags["newsdesk.process_died"]
    assert main(["sync", "--tracking-uri", store_uri]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert _steps(store_uri, run_id) == list(range(1, 1001))


MILLION = """
import os, sqlite3, sys
from tracker import TrainingLogger, WriterConfig

def rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

db = os.environ["STORE"].removeprefix("sqlite:///")
log = TrainingLogger("outage", tracking_uri=os.environ["STORE"],
                     writer_config=WriterConfig(close_timeout_s=2.0))
print(log.run_id, flush=True)
lock = sqlite3.connect(db, isolation_level=None)
lock.execute("BEGIN EXCLUSIVE")  # the store is down from here on
for step in range(1, 1001):  # warm up
    log.log_metrics({"a": 1.0, "b": 2.0, "c": 3.0}, step=-step)
before = rss_kib()
for step in range(1, 333_335):
    log.log_metrics({"a": 1.0 / step, "b": 2.0, "c": 3.0}, step=step)
after = rss_kib()
print("grew_kib", after - before, flush=True)
log.close()
lock.execute("COMMIT")
"""


@pytest.mark.slow
def test_a_million_points_while_the_store_is_down_keep_the_training_process_small(
    store_uri, tmp_path
):
    """Before, every point waited in a memory queue (about 112 bytes each: 107 MiB here)."""
    done = subprocess.run(
        [sys.executable, str(_script(tmp_path, MILLION))],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "STORE": store_uri},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id, grew = done.stdout.split()[0], done.stdout.split("grew_kib")[1].split()[0]
    print(f"1,003,002 points with the store down: the training process grew {int(grew)} KiB")
    assert int(grew) < 20 * 1024, f"the training process grew {int(grew) / 1024:.1f} MiB"
    assert f"did not accept 1003002 metric points of run {run_id}" in done.stderr
    log = wal_dir(Path(store_uri.removeprefix("sqlite:///")).parent / "spool", run_id)
    assert f"kept in {log}" in done.stderr


def _write_log(spool: Path, uri: str, run_id: str, parts: list[range | bytes]) -> None:
    """A run's log of several segments: point ranges, or raw bytes (damage)."""
    writer = WalWriter(wal_dir(spool, run_id), RunMeta(uri, run_id, 2**22 + 1), 1 << 30)
    ts = int(time.time() * 1000)
    for part in parts:
        if isinstance(part, bytes):
            writer.write(part)
        else:
            for step in part:
                writer.write(metrics_line(ts, step, [("train/loss", 1.0 / step)]))
        writer.close()
        time.sleep(0.001)
        writer = WalWriter(wal_dir(spool, run_id), RunMeta(uri, run_id, 2**22 + 1), 1 << 30)
    writer.close()


def test_a_damaged_line_is_kept_aside_and_every_other_line_ships(store_uri, tmp_path, capsys):
    client = MlflowClient(tracking_uri=store_uri)
    exp = client.create_experiment("wal")
    damaged, good = (client.create_run(exp).info.run_id for _ in range(2))
    spool = tmp_path / "spool"
    garbage = b"\x00\xffnot a record\n" + metrics_line(1, 999, [("train/loss", 9.0)])
    _write_log(spool, store_uri, damaged, [range(1, 51), garbage, range(51, 101)])
    _write_log(spool, store_uri, good, [range(1, 31)])

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "not a log record" in line]
    assert len(lines) == 1 and "(byte 0)" in lines[0] and ".corrupt" in lines[0]
    assert _steps(store_uri, damaged) == [*range(1, 101), 999]  # only the damaged line lost
    assert _steps(store_uri, good) == list(range(1, 31))
    # The processes that wrote them are gone and never closed: the runs end FAILED.
    assert client.get_run(good).info.status == "FAILED"
    assert client.get_run(damaged).info.status == "FAILED"
    assert "1 damaged lines" in client.get_run(damaged).data.tags["newsdesk.damaged_log"]
    aside = list(spool.glob("*.corrupt"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"\x00\xffnot a record\n"

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert _steps(store_uri, damaged) == [*range(1, 101), 999]


def test_the_shipper_ends_when_the_logger_closes_and_leaves_no_log_behind(store_uri):
    from tracker import TrainingLogger

    log = TrainingLogger("clean", tracking_uri=store_uri)
    for step in range(1, 101):
        log.log_metrics({"train/loss": 1.0 / step}, step=step)
    directory = log._wal_dir
    assert segments(directory), "the log is on disk while the run is open"
    log.close()
    assert not directory.exists()
    assert log.points_stored == 100
    try:
        os.kill(log._shipper.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the shipper process outlived its logger"
    assert _steps(store_uri, log.run_id) == list(range(1, 101))


def test_sync_leaves_the_log_of_a_live_run_to_its_own_shipper(store_uri, capsys):
    from tracker import TrainingLogger

    with TrainingLogger("live", tracking_uri=store_uri) as log:
        log.log_metrics({"train/loss": 1.0}, step=1)
        assert main(["sync", "--tracking-uri", store_uri]) == 0
        assert f"run {log.run_id} is still being shipped" in capsys.readouterr().err
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"
    assert sqlite3.connect(store_uri.removeprefix("sqlite:///")).execute(
        "SELECT count(*) FROM metrics"
    ).fetchone() == (1,)


def test_an_artifact_in_a_dead_process_log_is_uploaded_by_sync_in_order_and_once(
    store_uri, tmp_path, capsys
):
    """The log of a process that died: points, an artifact upload, more points, and a
    segment whose upload record points outside the log (damage, set aside)."""
    from tracker.shipping.wal import artifact_line, json_line

    client = MlflowClient(tracking_uri=store_uri)
    run_id = client.create_run(client.create_experiment("wal")).info.run_id
    spool = tmp_path / "spool"
    directory = wal_dir(spool, run_id)
    _write_log(spool, store_uri, run_id, [range(1, 51)])
    writer = WalWriter(directory, RunMeta(store_uri, run_id, 2**22 + 1), 1 << 30)
    folder = writer.stage()
    (folder / "report.json").write_text('{"类别": "体育"}', encoding="utf-8")
    writer.write(artifact_line(folder, "eval"))
    writer.close()
    time.sleep(0.001)
    _write_log(spool, store_uri, run_id, [range(51, 101)])
    outside = json_line({"t": "a", "dir": "files/../../../etc", "path": None})
    _write_log(spool, store_uri, run_id, [outside])

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 1
    err = capsys.readouterr().err
    assert "outside the log" in err and ".corrupt" in err
    assert _steps(store_uri, run_id) == list(range(1, 101))
    kept = Path(client.download_artifacts(run_id, "eval/report.json", str(tmp_path / "dl")))
    assert kept.read_text(encoding="utf-8") == '{"类别": "体育"}'
    assert not directory.exists()  # shipped, the run ended: the log and its copy are gone
    assert client.get_run(run_id).info.status == "FAILED"

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spool)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert _steps(store_uri, run_id) == list(range(1, 101))
