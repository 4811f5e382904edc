"""TrainingLogger against a real `mlflow server` process on 127.0.0.1 (SQLite backend)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, WriterConfig

# Every test here starts a real `mlflow server` and most wait out an outage.
pytestmark = pytest.mark.slow


def test_http_tracking_server_works_like_sqlite(server, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with TrainingLogger(
        "remote",
        run_name="r",
        tracking_uri=server.url,
        params={"model": {"hidden_size": 8}},
        writer_config=WriterConfig(flush_interval_s=0.05),
    ) as log:
        for step in range(1, 1501):
            log.log_metrics({"train/loss": 1.0 / step, "lr": 0.1}, step=step)
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        log.log_figure(fig, "plots/curve.png")
        plt.close(fig)
    client = MlflowClient(tracking_uri=server.url)
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model.hidden_size": "8"}
    steps = [m.step for m in client.get_metric_history(log.run_id, "train/loss")]
    assert sorted(steps) == list(range(1, 1501))
    assert [a.path for a in client.list_artifacts(log.run_id, "plots")] == ["plots/curve.png"]


def test_server_killed_and_restarted_loses_nothing(server):
    """SIGKILL the server mid-run, restart it: every point is stored exactly once."""
    log = TrainingLogger(
        "remote",
        tracking_uri=server.url,
        writer_config=WriterConfig(
            flush_interval_s=0.05, backoff_initial_s=0.2, close_timeout_s=120
        ),
    )
    for step in range(1, 501):
        log.log_metrics({"train/loss": float(step)}, step=step)
    assert log.flush(timeout=30)
    server.kill()
    started = time.monotonic()
    for step in range(501, 1001):
        log.log_metrics({"train/loss": float(step)}, step=step)
    assert time.monotonic() - started < 2, "logging must not block while the server is down"
    time.sleep(2)
    server.start()
    log.close()
    assert log.spool_path is None
    history = MlflowClient(tracking_uri=server.url).get_metric_history(log.run_id, "train/loss")
    steps = sorted(m.step for m in history)
    print(f"handed over 1000, stored {len(steps)}, duplicates {len(steps) - len(set(steps))}")
    assert steps == list(range(1, 1001))


def test_a_backlog_goes_to_the_server_in_requests_side_by_side_exactly_once(server, capsys):
    """A backlog of 12,000 points is sent as several 1,000-point requests at once (the
    server's workers take them side by side). The first attempt fails whole (server down),
    the pieces are retried one by one once it is back; a changed param beside them is
    split off. Every point is stored once."""
    cfg = WriterConfig(
        flush_interval_s=600.0, parallel_requests=4, backoff_initial_s=0.2, close_timeout_s=120
    )
    log = TrainingLogger("remote", tracking_uri=server.url, writer_config=cfg)
    # Logged by an earlier process of the run: this logger cannot refuse the change.
    MlflowClient(tracking_uri=server.url).log_param(log.run_id, "lr", "0.1")
    server.kill()
    for step in range(1, 4001):
        log.log_metrics({"train/loss": 1.0 / step, "train/acc": 0.5, "lr": 0.1}, step=step)
    log.log_params({"lr": 0.2, "batch_size": 64})  # lr changed: the server refuses it
    assert not log.flush(timeout=1)  # the side-by-side attempt failed; retrying
    server.start()
    log.close()
    err = capsys.readouterr().err
    assert "refused 1 entries" in err
    client = MlflowClient(tracking_uri=server.url)
    for key in ("train/loss", "train/acc", "lr"):
        steps = sorted(m.step for m in client.get_metric_history(log.run_id, key))
        assert steps == list(range(1, 4001)), key
    run = client.get_run(log.run_id)
    assert run.data.params == {"lr": "0.1", "batch_size": "64"}
    assert run.info.status == "FAILED"  # a refused entry: not a clean FINISHED


def test_artifacts_logged_while_the_server_is_down_wait_in_the_log_and_arrive(server, tmp_path):
    """Before, each upload to a dead server waited out MLflow's HTTP retries in the loop.
    Now the files are copied into the run's log and uploaded, in order, once it is back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "a.txt").write_text("first")
    (folder / "b.txt").write_text("second")
    cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=0.2, close_timeout_s=120)
    log = TrainingLogger("remote", tracking_uri=server.url, writer_config=cfg)
    log.log_metrics({"train/loss": 1.0}, step=1)
    assert log.flush(timeout=30)
    server.kill()
    started = time.monotonic()
    log.log_dict({"类别": "体育", "acc": 0.9}, "eval/report.json")
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    log.log_figure(fig, "plots/curve.png")
    plt.close(fig)
    log.log_artifact(folder, "checkpoint")
    log.log_metrics({"train/loss": 0.5}, step=2)
    assert time.monotonic() - started < 2, "uploads must not wait for a dead server"
    time.sleep(1)
    server.start()
    log.close()
    assert log.spool_path is None
    client = MlflowClient(tracking_uri=server.url)
    assert client.get_run(log.run_id).info.status == "FINISHED"
    listed = {a.path for a in client.list_artifacts(log.run_id, "checkpoint")}
    assert listed == {"checkpoint/a.txt", "checkpoint/b.txt"}
    assert [a.path for a in client.list_artifacts(log.run_id, "plots")] == ["plots/curve.png"]
    report = client.download_artifacts(log.run_id, "eval/report.json", str(tmp_path / "dl"))
    assert '"类别": "体育"' in Path(report).read_text(encoding="utf-8")
    assert sorted(m.step for m in client.get_metric_history(log.run_id, "train/loss")) == [1, 2]


def _logging_when_the_store_dies(server, cfg: WriterConfig, tmp_path) -> TrainingLogger:
    """A logger whose step 1 is stored and whose step 2 was logged after the server died."""
    log = TrainingLogger(
        "remote", tracking_uri=server.url, writer_config=cfg, spool_dir=tmp_path / "spool"
    )
    log.log_metrics({"train/loss": 1.0}, step=1)
    assert log.flush(timeout=30)
    server.kill()
    log.log_metrics({"train/loss": 2.0}, step=2)
    return log


def test_a_store_back_from_an_outage_takes_the_points_at_the_next_flush(server, tmp_path):
    """The shipper retries on its own schedule, and `flush` cuts its backoff short. Before,
    each attempt sat inside MLflow's HTTP retries (backoff doubling to 120 s: one `log_batch`
    to a dead server returned after 248 s), so a store back from an outage was noticed up to
    two minutes late and the shipper made no attempt `close` could count."""
    cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=0.2, backoff_max_s=60)
    log = _logging_when_the_store_dies(server, cfg, tmp_path)
    deadline = time.monotonic() + 30
    while log.shipper_state.failures < 4:  # 0.2 + 0.4 + 0.8 s of backoff, then 1.6 s
        assert time.monotonic() < deadline, "each attempt must fail fast, not retry inside"
        time.sleep(0.05)
    server.start()
    started = time.monotonic()
    assert log.flush(timeout=60)
    waited = time.monotonic() - started
    print(f"flush after the store came back: {waited:.1f} s")
    assert waited < 10, waited  # not the rest of a backoff of up to 60 s
    log.close()
    client = MlflowClient(tracking_uri=server.url)
    assert sorted(m.step for m in client.get_metric_history(log.run_id, "train/loss")) == [1, 2]


def test_close_after_a_timed_out_flush_stops_once_the_store_refuses_again(server, tmp_path, capsys):
    """`close` gives up on a store after `close_timeout_s` without progress; after a `flush`
    that timed out on the same dead store, it stops as soon as the store refuses two more
    attempts. Before, a training that gave up on the store after its 30 s check waited
    another 30 s in `close` (61 s to exit). Nothing is lost: the rest waits in the log for
    `newsdesk sync`."""
    from tracker.cli import main

    patience = 20.0
    cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=0.2, close_timeout_s=patience)
    spools = tmp_path / "spool"
    log = TrainingLogger("remote", tracking_uri=server.url, writer_config=cfg, spool_dir=spools)
    for step in range(1, 101):
        log.log_metrics({"train/loss": float(step)}, step=step)
    assert log.flush(timeout=30)
    server.kill()
    log.log_metrics({"train/loss": 101.0}, step=101)
    assert not log.flush(timeout=4)
    started = time.monotonic()
    log.close()
    waited = time.monotonic() - started
    print(f"close after a flush that timed out, {patience:.0f} s of patience: {waited:.1f} s")
    assert waited < patience / 2, waited
    assert log.spool_path is not None

    # `newsdesk sync` while the store is still down: it retries for `--patience` seconds and
    # says so; before, MLflow's own retries kept it waiting 253 s whatever the patience.
    started = time.monotonic()
    sync = ["sync", "--tracking-uri", server.url, "--spool-dir", str(spools)]
    assert main([*sync, "--patience", "3"]) == 1
    waited = time.monotonic() - started
    print(f"sync with the store down, 3 s of patience: {waited:.1f} s")
    assert 3 <= waited < 30, waited
    assert "newsdesk sync' again later" in capsys.readouterr().err

    server.start()
    assert main(sync) == 0
    client = MlflowClient(tracking_uri=server.url)
    steps = sorted(m.step for m in client.get_metric_history(log.run_id, "train/loss"))
    assert steps == list(range(1, 102))
    assert client.get_run(log.run_id).info.status == "FINISHED"


def test_a_store_back_by_the_close_after_a_timed_out_flush_takes_everything(server, tmp_path):
    """The quick stop counts the store's refusals, not seconds: a store that was down when a
    `flush` timed out and is back when the training ends gets everything at close."""
    cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=0.2, close_timeout_s=30)
    log = _logging_when_the_store_dies(server, cfg, tmp_path)
    assert not log.flush(timeout=1)
    log.log_metrics({"train/loss": 3.0}, step=3)
    server.start()
    log.close()
    assert log.spool_path is None
    client = MlflowClient(tracking_uri=server.url)
    assert sorted(m.step for m in client.get_metric_history(log.run_id, "train/loss")) == [1, 2, 3]
    assert client.get_run(log.run_id).info.status == "FINISHED"
