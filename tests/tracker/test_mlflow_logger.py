"""TrainingLogger against a real SQLite MLflow store."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker import RunStatus, TrainingLogger, WriterConfig
from tracker.cli import main

FAST = WriterConfig(flush_interval_s=0.05)


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=uri)
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_every_point_is_stored_once_with_its_value(store_uri):
    with TrainingLogger("exp", run_name="r", tracking_uri=store_uri, writer_config=FAST) as log:
        for step in range(1, 2501):
            log.log_metrics({"train/loss": 1.0 / step, "train/acc": step / 2500}, step=step)
        log.flush()
        assert log.points_stored == 5000
    loss = history(store_uri, log.run_id, "train/loss")
    assert [s for s, _ in loss] == list(range(1, 2501))
    assert all(math.isclose(v, 1.0 / s) for s, v in loss)
    assert len(history(store_uri, log.run_id, "train/acc")) == 2500
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "r"


def test_params_are_flattened_and_tags_recorded(store_uri):
    with TrainingLogger(
        "exp",
        tracking_uri=store_uri,
        params={"model": {"hidden_size": 128}, "train": {"lr": 0.001}},
        tags={"model": "lstm"},
    ) as log:
        log.set_tags({"stage": "test"})
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.data.params == {"model.hidden_size": "128", "train.lr": "0.001"}
    assert run.data.tags["model"] == "lstm"
    assert run.data.tags["stage"] == "test"
    for key in ("python_version", "torch_version", "mlflow_version", "host"):
        assert run.data.tags[key]
    assert run.data.tags["mlflow_version"] == "3.17.2"


def test_git_commit_tag_inside_a_checkout(store_uri, tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=tmp_path,
        check=True,
        env={**os.environ, **env},
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    with TrainingLogger("exp", tracking_uri=store_uri) as log:
        pass
    tags = MlflowClient(tracking_uri=store_uri).get_run(log.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head


def test_non_finite_values_are_stored_as_mlflow_stores_them(store_uri):
    with TrainingLogger("exp", tracking_uri=store_uri, writer_config=FAST) as log:
        log.log_metrics({"train/loss": float("nan")}, step=1)
        log.log_metrics({"train/loss": float("inf")}, step=2)
        log.log_metrics({"train/loss": 0.5}, step=3)
    values = history(store_uri, log.run_id, "train/loss")
    assert [s for s, _ in values] == [1, 2, 3]
    assert math.isnan(values[0][1])
    assert values[1][1] > 1e300
    assert values[2][1] == 0.5


def test_resume_appends_to_the_same_run(store_uri):
    with TrainingLogger("exp", tracking_uri=store_uri, writer_config=FAST) as first:
        for step in range(1, 11):
            first.log_metrics({"train/loss": step}, step=step)
    with TrainingLogger("exp", run_id=first.run_id, tracking_uri=store_uri) as second:
        for step in range(11, 21):
            second.log_metrics({"train/loss": step}, step=step)
    assert second.run_id == first.run_id
    assert [s for s, _ in history(store_uri, first.run_id, "train/loss")] == list(range(1, 21))
    assert MlflowClient(tracking_uri=store_uri).get_run(first.run_id).info.status == "FINISHED"


def test_resume_into_another_experiment_is_refused(store_uri):
    with TrainingLogger("exp", tracking_uri=store_uri) as log:
        pass
    with pytest.raises(ValueError, match="belongs to experiment 'exp'"):
        TrainingLogger("other", run_id=log.run_id, tracking_uri=store_uri)


def test_exception_ends_the_run_failed_after_flushing(store_uri):
    with pytest.raises(RuntimeError, match="boom"):
        with TrainingLogger("exp", tracking_uri=store_uri) as log:
            log.log_metrics({"train/loss": 1.0}, step=1)
            raise RuntimeError("boom")
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FAILED"
    assert history(store_uri, log.run_id, "train/loss") == [(1, 1.0)]


def test_keyboard_interrupt_ends_the_run_killed_after_flushing(store_uri):
    with pytest.raises(KeyboardInterrupt):
        with TrainingLogger("exp", tracking_uri=store_uri) as log:
            log.log_metrics({"train/loss": 1.0}, step=7)
            raise KeyboardInterrupt
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "KILLED"
    assert history(store_uri, log.run_id, "train/loss") == [(7, 1.0)]


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_after_flushing(store_uri, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        from tracker import TrainingLogger
        with TrainingLogger("exp", tracking_uri={store_uri!r}) as log:
            for step in range(1, 101):
                log.log_metrics({{"train/loss": 1.0}}, step=step)
            print(log.run_id, flush=True)
            while True:
                time.sleep(0.1)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    assert MlflowClient(tracking_uri=store_uri).get_run(run_id).info.status == "KILLED"
    assert len(history(store_uri, run_id, "train/loss")) == 100


@pytest.mark.slow
def test_sigterm_raised_inside_a_garbage_collector_callback_still_ends_the_run(store_uri, tmp_path):
    # Python ignores an exception raised in a weakref callback; the signal arrives here while
    # one runs (as it did in CI, inside matplotlib's transform tree), and must not be lost.
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, sys, time, weakref
        from tracker import TrainingLogger
        class Node:
            pass
        with TrainingLogger("exp", tracking_uri={store_uri!r}) as log:
            log.log_metrics({{"train/loss": 1.0}}, step=1)
            print(log.run_id, flush=True)
            node = Node()
            ref = weakref.ref(node, lambda _: os.kill(os.getpid(), signal.SIGTERM))
            del node
            time.sleep(30)
            print("carried on", flush=True)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert "carried on" not in proc.stdout
    assert proc.returncode != 0, proc.stderr[-2000:]
    run_id = proc.stdout.split()[0]
    assert MlflowClient(tracking_uri=store_uri).get_run(run_id).info.status == "KILLED"
    assert history(store_uri, run_id, "train/loss") == [(1, 1.0)]


def test_bad_metric_name_raises_in_the_callers_thread(store_uri):
    with TrainingLogger("exp", tracking_uri=store_uri) as log:
        with pytest.raises(ValueError, match="invalid metric name 'loss!'"):
            log.log_metrics({"loss!": 1.0}, step=1)
        log.log_metrics({"train/loss": 1.0}, step=1)
    assert history(store_uri, log.run_id, "train/loss") == [(1, 1.0)]


def test_step_is_keyword_only_and_required(store_uri):
    with TrainingLogger("exp", tracking_uri=store_uri) as log:
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0}, 3)  # type: ignore[misc]
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0})  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0}, step=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            log.log_metrics({"train/loss": 1.0}, step=1.5)  # type: ignore[arg-type]


def test_several_loggers_open_in_one_process(store_uri):
    logs = [TrainingLogger("exp", run_name=f"r{i}", tracking_uri=store_uri) for i in range(3)]
    for step in range(1, 51):
        for i, log in enumerate(logs):
            log.log_metrics({"train/loss": i + step / 100}, step=step)
    for log in logs:
        log.close()
    for i, log in enumerate(logs):
        values = history(store_uri, log.run_id, "train/loss")
        assert len(values) == 50
        assert math.isclose(values[0][1], i + 0.01)


def test_artifacts_figures_and_dicts_land_in_the_run(store_uri, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    note = tmp_path / "note.txt"
    note.write_text("hello")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with TrainingLogger("exp", tracking_uri=store_uri) as log:
        log.log_artifact(note, "notes")
        log.log_figure(fig, "plots/curve.png")
        log.log_dict({"类别": "财经"}, "report.json")
        with pytest.raises(ValueError):
            log.log_dict({"x": 1}, "../outside.json")
    plt.close(fig)
    client = MlflowClient(tracking_uri=store_uri)
    names = {a.path for a in client.list_artifacts(log.run_id)}
    assert {"notes", "plots", "report.json"} <= names
    local = client.download_artifacts(log.run_id, "report.json", str(tmp_path))
    assert "财经" in Path(local).read_text(encoding="utf-8")
    assert (tmp_path / "mlruns" / "artifacts").is_dir()


def _lock(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


@pytest.mark.slow
def test_store_locked_for_a_while_loses_nothing(store_uri):
    """The writer outlives a lock longer than MLflow's 20 s SQLite busy timeout, then catches up."""
    db = Path(store_uri.removeprefix("sqlite:///"))
    cfg = WriterConfig(flush_interval_s=0.05, backoff_initial_s=0.1)
    with TrainingLogger("exp", tracking_uri=store_uri, writer_config=cfg) as log:
        conn = _lock(db)
        release = threading.Timer(21.0, conn.execute, args=("COMMIT",))
        release.start()
        started = time.monotonic()
        for step in range(1, 1201):
            log.log_metrics({"train/loss": step, "lr": 0.1}, step=step)
        assert time.monotonic() - started < 5, "log_metrics must not block on the locked store"
        assert log.flush(timeout=60)
        release.join()
        assert log.shipper_state.failures >= 1, "the store should have refused at least once"
    assert len(history(store_uri, log.run_id, "train/loss")) == 1200
    assert len(history(store_uri, log.run_id, "lr")) == 1200


def test_store_that_never_comes_back_is_spooled_and_synced_once(store_uri, tmp_path, capsys):
    db = Path(store_uri.removeprefix("sqlite:///"))
    cfg = WriterConfig(flush_interval_s=0.05, close_timeout_s=1.0)
    log = TrainingLogger("exp", tracking_uri=store_uri, writer_config=cfg)
    conn = _lock(db)
    for step in range(1, 301):
        log.log_metrics({"train/loss": step}, step=step)
    log.close()
    assert log.spool_path is not None and log.spool_path.exists()
    assert "newsdesk sync" in capsys.readouterr().err
    conn.execute("COMMIT")
    conn.close()

    assert main(["sync", "--tracking-uri", store_uri]) == 0
    assert "synced 300 metric points" in capsys.readouterr().out
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(1, 301))
    assert main(["sync", "--tracking-uri", store_uri]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert len(history(store_uri, log.run_id, "train/loss")) == 300
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"


def test_closed_logger_refuses_new_points(store_uri):
    log = TrainingLogger("exp", tracking_uri=store_uri)
    log.close(RunStatus.FINISHED)
    with pytest.raises(RuntimeError, match="closed"):
        log.log_metrics({"train/loss": 1.0}, step=1)


def test_a_refused_param_is_split_off_and_the_points_beside_it_are_stored(
    store_uri, tmp_path, capsys
):
    """Before, a changed param value cost the 300 metric points in its batch, and the run
    still ended FINISHED with nothing said."""
    cfg = WriterConfig(flush_interval_s=60.0, wake_threshold=10_000)
    spool = tmp_path / "spool"
    log = TrainingLogger("exp", tracking_uri=store_uri, writer_config=cfg, spool_dir=spool)
    with log:
        # Logged by an earlier process of the run: this logger cannot refuse the change.
        MlflowClient(tracking_uri=store_uri).log_param(log.run_id, "lr", "0.1")
        for step in range(1, 301):
            log.log_metrics({"train/loss": 1.0 / step}, step=step)
        log.log_params({"lr": 0.2, "batch_size": 64})  # lr changed: the store refuses it
    err = capsys.readouterr().err
    assert "refused 1 entries" in err and "the run ends FAILED" in err
    assert [s for s, _ in history(store_uri, log.run_id, "train/loss")] == list(range(1, 301))
    run = MlflowClient(tracking_uri=store_uri).get_run(log.run_id)
    assert run.data.params == {"lr": "0.1", "batch_size": "64"}
    assert run.info.status == "FAILED"
    assert run.data.tags["newsdesk.rejected"].startswith("1 entries")
    files = list(spool.glob("*.rejected"))
    kept = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [k["params"] for k in kept] == [{"lr": "0.2"}]


def _run_script(body: str, store_uri: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "STORE": store_uri}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow
@pytest.mark.parametrize(("ending", "status"), [("pass", "FINISHED"), ("1 / 0", "FAILED")])
def test_a_logger_never_closed_stores_every_point_and_ends_its_run_at_exit(
    store_uri, tmp_path, ending, status
):
    done = _run_script(
        f"""
        import os
        from tracker import TrainingLogger
        log = TrainingLogger("open", tracking_uri=os.environ["STORE"])
        print(log.run_id, flush=True)
        for step in range(1, 1001):
            log.log_metrics({{"train/loss": 1.0 / step}}, step=step)
        {ending}
        """,
        store_uri,
        tmp_path,
    )
    run_id = done.stdout.split()[0]
    assert [s for s, _ in history(store_uri, run_id, "train/loss")] == list(range(1, 1001))
    assert MlflowClient(tracking_uri=store_uri).get_run(run_id).info.status == status


@pytest.mark.slow
def test_a_forked_child_is_told_it_cannot_log_and_its_exit_leaves_the_run_alone(
    store_uri, tmp_path
):
    done = _run_script(
        """
        import os, sys
        from tracker import TrainingLogger
        with TrainingLogger("fork", tracking_uri=os.environ["STORE"]) as log:
            print(log.run_id, flush=True)
            log.log_metrics({"train/loss": 1.0}, step=1)
            pid = os.fork()
            if pid == 0:
                refused = 0
                calls = [
                    lambda: log.log_metrics({"train/loss": 2.0}, step=2),
                    lambda: log.log_input("d", context="train", digest="x", source="s",
                                          num_rows=1),
                    lambda: log.flush(),
                ]
                for call in calls:
                    try:
                        call()
                    except RuntimeError as exc:
                        print("child:", exc, file=sys.stderr)
                        refused += 1
                log.close()  # the parent's run: a child's close leaves it alone
                sys.exit(refused)  # leaves the `with` block, runs the child's atexit handlers
            _, code = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(code), flush=True)
            log.log_metrics({"train/loss": 3.0}, step=3)
        """,
        store_uri,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.split()[0]
    assert "child exit 3" in done.stdout, "every call of the child refused"
    assert "this forked child (a DataLoader worker?) cannot log through it" in done.stderr
    assert history(store_uri, run_id, "train/loss") == [(1, 1.0), (3, 3.0)]
    run = MlflowClient(tracking_uri=store_uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.inputs.dataset_inputs == []


@pytest.mark.slow
def test_close_waits_for_a_long_drain_while_the_store_keeps_accepting(store_uri, tmp_path):
    """`close_timeout_s` bounds a store that stopped answering, not a healthy one: before,
    close gave up after it however fast points were being stored, and spooled the rest as
    'store unavailable'."""
    cfg = WriterConfig(flush_interval_s=600.0, wake_threshold=10**9, close_timeout_s=0.5)
    log = TrainingLogger("drain", tracking_uri=store_uri, writer_config=cfg, spool_dir=tmp_path)
    started = time.monotonic()
    for step in range(1, 100_001):
        log.log_metrics({"train/loss": 1.0, "lr": 0.1}, step=step)
    log.close()
    assert time.monotonic() - started > 1.5, "the drain was too fast to show anything"
    assert log.spool_path is None
    assert len(history(store_uri, log.run_id, "lr")) == 100_000
    assert MlflowClient(tracking_uri=store_uri).get_run(log.run_id).info.status == "FINISHED"
