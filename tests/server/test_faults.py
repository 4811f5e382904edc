"""Faults against a real mlflow server on a real PostgreSQL: nothing lost, nothing twice.

Each test counts the points the training loop handed over, reads every key back with
`MlflowClient.get_metric_history`, and prints handed over / stored / duplicates / missing.
"""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.server.helpers import CountingLogger, count_points, small_training
from tracker import TrainingLogger, WriterConfig
from tracker.shipping.sync import sync_spools

pytestmark = pytest.mark.server

FAST_RETRY = WriterConfig(flush_interval_s=0.2, backoff_initial_s=0.2, close_timeout_s=180)


def test_server_sigkilled_mid_training_and_restarted_after_10s(pg_server, prepared):
    """Fault 1: training goes on at full speed; after the run every point is stored once."""
    timeline: dict[str, float] = {}

    def crash_and_restart() -> None:
        time.sleep(2.0)
        timeline["killed"] = time.monotonic()
        pg_server.kill()
        time.sleep(10.0)
        pg_server.start()
        timeline["back"] = time.monotonic()

    chaos = threading.Thread(target=crash_and_restart)
    with TrainingLogger("faults", tracking_uri=pg_server.url, writer_config=FAST_RETRY) as inner:
        log = CountingLogger(inner)
        chaos.start()
        started = time.monotonic()
        # Real training in chunks of 300 steps (one step axis) until the server is back, then
        # one more chunk, so the run spans before, during and after the outage.
        while "back" not in timeline and time.monotonic() - started < 300:
            small_training(prepared, log, steps=300, model="fasttext")
        small_training(prepared, log, steps=300, model="fasttext")
        chaos.join()
    assert "killed" in timeline and "back" in timeline
    # The loop never waited on the store: the longest pause between two hand-overs while the
    # server was down is a training step or a validation pass, not a retry.
    gap_down = log.max_gap(timeline["killed"], timeline["back"])
    gap_up = log.max_gap(started, timeline["killed"])
    assert gap_down < max(1.0, 5 * gap_up), (gap_down, gap_up)
    counts = count_points(pg_server.url, inner.run_id, log.handed, log.steps)
    print(counts.line("server SIGKILLed, restarted after 10 s"))
    run = MlflowClient(pg_server.url).get_run(inner.run_id)
    assert run.info.status == "FINISHED"
    assert counts.handed > 1000
    assert (counts.stored, counts.duplicates, counts.missing) == (counts.handed, 0, 0)


def test_server_down_until_the_run_ends_then_sync_twice(pg_server, prepared, tmp_path, capsys):
    """Fault 2: the points are spooled at close; `newsdesk sync` stores them once; again: 0."""
    spool = tmp_path / "spool"
    config = WriterConfig(flush_interval_s=0.2, backoff_initial_s=0.2, close_timeout_s=3)
    with TrainingLogger(
        "faults", tracking_uri=pg_server.url, writer_config=config, spool_dir=spool
    ) as inner:
        log = CountingLogger(inner)
        small_training(prepared, log, steps=100, model="fasttext")
        assert inner.flush(timeout=60)
        pg_server.kill()
        small_training(prepared, log, steps=300, model="fasttext")
    assert inner.spool_path is not None and inner.spool_path.parent == spool
    assert "newsdesk sync" in capsys.readouterr().err
    pg_server.start()
    first = sync_spools(spool, tracking_uri=pg_server.url)
    second = sync_spools(spool, tracking_uri=pg_server.url)
    counts = count_points(pg_server.url, inner.run_id, log.handed, log.steps)
    print(counts.line("server down until the run ended, then sync"))
    print(f"sync 1 replayed {first.points} points, sync 2 replayed {second.points}")
    assert first.points > 0 and second.points == 0 and not second.files
    assert (counts.stored, counts.duplicates, counts.missing) == (counts.handed, 0, 0)
    assert MlflowClient(pg_server.url).get_run(inner.run_id).info.status == "FINISHED"


def test_database_restarts_under_a_running_server(pg_server, postgres, prepared):
    """Fault 5: PostgreSQL goes away for 5 s under the server; the logger retries through it."""
    with TrainingLogger("faults", tracking_uri=pg_server.url, writer_config=FAST_RETRY) as inner:
        log = CountingLogger(inner)
        small_training(prepared, log, steps=200, model="fasttext")
        assert inner.flush(timeout=60)
        postgres.stop()
        small_training(prepared, log, steps=300, model="fasttext")
        # The outage is real: nothing handed over since the stop can be stored now.
        assert not inner.flush(timeout=5.0), "the store took points with its database down"
        postgres.start()
        small_training(prepared, log, steps=200, model="fasttext")
    counts = count_points(pg_server.url, inner.run_id, log.handed, log.steps)
    print(counts.line("database restarted under the server"))
    assert (counts.stored, counts.duplicates, counts.missing) == (counts.handed, 0, 0)
    assert MlflowClient(pg_server.url).get_run(inner.run_id).info.status == "FINISHED"
