"""`newsdesk sweep`: Optuna trials as MLflow runs nested under one parent, on a real SQLite
tracking store and a real Optuna RDB storage, with real training on a THUCNews slice."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import PROGRESS_TIMEOUT_S, newsdesk_command, run_ok, write_slice
from tracker import schema

pytestmark = pytest.mark.slow

FAST = [
    "--set",
    "model.buckets=5000",
    "--set",
    "train.eval_every=5",
    "--quiet",
    "--no-system-metrics",
]


@pytest.fixture(scope="module")
def slice_640(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep-data")
    return write_slice(thucnews_dir, root / "slice", {"train": 640, "dev": 200, "test": 200})


def _sweep(data: Path, uri: str, tmp_path: Path, *extra: str) -> list[str]:
    return newsdesk_command(
        "sweep",
        "--model",
        "fasttext",
        "--data",
        str(data),
        "--tracking-uri",
        uri,
        "--experiment",
        "sweeps",
        "--cache-dir",
        str(tmp_path / "cache"),
        *FAST,
        *extra,
    )


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("sweeps")
    return client.search_runs([exp.experiment_id]) if exp else []


def _study(uri: str, name: str) -> optuna.Study:
    db = Path(uri.removeprefix("sqlite:///")).parent / "optuna.db"
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def _split(runs: list) -> tuple:
    parents = [r for r in runs if schema.PARENT_RUN_TAG not in r.data.tags]
    children = [r for r in runs if schema.PARENT_RUN_TAG in r.data.tags]
    return parents, children


def test_four_trials_in_two_jobs_nest_under_one_parent(slice_640, store_uri, tmp_path):
    run_ok(
        _sweep(
            slice_640,
            store_uri,
            tmp_path,
            "--trials",
            "4",
            "--jobs",
            "2",
            "--max-steps",
            "20",
            "--study",
            "four",
        ),
    )
    parents, children = _split(_runs(store_uri))
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.trials"] == "4"
    assert parent.data.params["space.train.lr"].startswith("log [")
    assert "space.train.epochs" not in parent.data.params  # --max-steps fixes the length
    assert len(children) == 4
    assert {c.data.tags[schema.PARENT_RUN_TAG] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags[schema.SWEEP_TRIAL_TAG]) for c in children) == [0, 1, 2, 3]

    study = _study(store_uri, "four")
    finished = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) == 4
    by_run = {t.user_attrs["mlflow_run_id"]: t for t in finished}
    assert set(by_run) == {c.info.run_id for c in children}
    for child in children:
        trial = by_run[child.info.run_id]
        # A trial is `newsdesk train` with its values as settings.
        assert float(child.data.params["train.lr"]) == pytest.approx(trial.params["train.lr"])
        if trial.state.name == "COMPLETE":
            assert child.info.status == "FINISHED"
            assert child.data.metrics[schema.BEST_LOSS] == pytest.approx(trial.value)
    # The parent's best is the best child's.
    complete = [c for c in children if c.data.tags[schema.SWEEP_STATE_TAG] == "COMPLETE"]
    best = min(complete, key=lambda c: c.data.metrics[schema.BEST_LOSS])
    assert parent.data.metrics[schema.SWEEP_BEST_VALUE] == pytest.approx(
        best.data.metrics[schema.BEST_LOSS]
    )
    assert parent.data.tags["best.run_id"] == best.info.run_id
    client = MlflowClient(tracking_uri=store_uri)
    table = pd.read_csv(
        client.download_artifacts(parent.info.run_id, schema.SWEEP_TRIALS_ARTIFACT, str(tmp_path))
    )
    assert sorted(table["trial"]) == [0, 1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert schema.SWEEP_HISTORY_ARTIFACT in artifacts

    # `compare` shows the sweep as its parent with its best trial; --parent lists the trials.
    run_ok(
        newsdesk_command(
            "compare",
            "--experiment",
            "sweeps",
            "--tracking-uri",
            store_uri,
            "--metric",
            "test/acc",
            "--out",
            str(tmp_path / "cmp"),
        ),
    )
    frame = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(frame["run_id"]) == [parent.info.run_id]
    assert frame.loc[0, "trials"] == 4
    run_ok(
        newsdesk_command(
            "compare",
            "--experiment",
            "sweeps",
            "--tracking-uri",
            store_uri,
            "--parent",
            parent.info.run_id,
            "--out",
            str(tmp_path / "nested"),
        ),
    )
    assert len(pd.read_csv(tmp_path / "nested" / "compare.csv")) == 4


def test_a_trial_worse_than_the_median_is_pruned(slice_640, store_uri, tmp_path):
    space = tmp_path / "space.toml"
    # FastText's table learns at its own rate: a trial that cannot learn has both rates tiny.
    space.write_text(
        "[train.lr]\nlow = 1e-7\nhigh = 1e-2\nlog = true\n"
        "[train.sparse_lr]\nlow = 1e-7\nhigh = 1e-2\nlog = true\n",
        encoding="utf-8",
    )
    run_ok(
        _sweep(
            slice_640,
            store_uri,
            tmp_path,
            "--trials",
            "2",
            "--max-steps",
            "20",
            "--space",
            str(space),
            "--study",
            "prune",
            "--pruner-startup-trials",
            "1",
            "--enqueue",
            "train.lr=5e-3,train.sparse_lr=5e-3",
            "--enqueue",
            "train.lr=1e-7,train.sparse_lr=1e-7",
        ),
    )
    parents, children = _split(_runs(store_uri))
    by_trial = {int(c.data.tags[schema.SWEEP_TRIAL_TAG]): c for c in children}
    assert by_trial[0].data.tags[schema.SWEEP_STATE_TAG] == "COMPLETE"
    pruned = by_trial[1]
    assert pruned.data.tags[schema.SWEEP_STATE_TAG] == "PRUNED"
    assert pruned.info.status == "KILLED"
    # Pruned at its first evaluation (step 5), so it never trained on.
    client = MlflowClient(tracking_uri=store_uri)
    assert max(m.step for m in client.get_metric_history(pruned.info.run_id, "train/loss")) == 5
    assert parents[0].data.metrics[schema.SWEEP_BEST_VALUE] == pytest.approx(
        by_trial[0].data.metrics[schema.BEST_LOSS]
    )


TRIAL_EPOCHS = 16
TRIAL_STEPS = TRIAL_EPOCHS * 640 // 8


def _wait_for_running_trial(
    uri: str, proc: subprocess.Popen, n: int, timeout: float = PROGRESS_TIMEOUT_S
) -> str:
    """The id of a child run that is training right now, at least `n` children in.

    A trial here trains for seconds, and the store is polled: a run seen RUNNING by the search
    may have finished by the time its metrics are read, and the stored losses lag the training
    by up to the logger's flush interval. So the run must have stored losses for at most half
    its steps, and must still be RUNNING when read again just before the signal.
    """
    deadline = time.monotonic() + timeout
    client = MlflowClient(tracking_uri=uri)
    while True:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the sweep never reached a trial to interrupt"
        _, children = _split(_runs(uri))
        running = [c for c in children if c.info.status == "RUNNING"]
        if len(children) >= n and running:
            run_id = running[0].info.run_id
            steps = [m.step for m in client.get_metric_history(run_id, "train/loss")]
            if steps and max(steps) <= TRIAL_STEPS // 2:
                if client.get_run(run_id).info.status == "RUNNING":
                    return run_id
        time.sleep(0.2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_sweep_continues_without_losing_or_repeating_a_trial(
    slice_640, store_uri, tmp_path, signum
):
    # TRIAL_STEPS: 16 epochs of 80 steps (batch 8), seconds of training, long enough to interrupt
    # after the first losses are stored (the logger writes them a second after they are taken).
    command = _sweep(
        slice_640,
        store_uri,
        tmp_path,
        "--trials",
        "3",
        "--epochs",
        str(TRIAL_EPOCHS),
        "--study",
        "again",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.eval_every=40",
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = _wait_for_running_trial(store_uri, proc, 2)  # trial 0 finished, one training
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (143 if signum == signal.SIGTERM else -9), err[-3000:]
    study = _study(store_uri, "again")
    (interrupted,) = [t for t in study.trials if t.user_attrs.get("mlflow_run_id") == run_id]
    assert interrupted.number >= 1
    assert interrupted.state.name in ("FAIL", "RUNNING")  # RUNNING: its process was SIGKILLed

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    study = _study(store_uri, "again")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    # The interrupted trial's values were trained again, once; no values twice.
    assert Counter(t.params["train.lr"] for t in complete)[interrupted.params["train.lr"]] == 1
    assert len({t.params["train.lr"] for t in complete}) == 3
    parents, children = _split(_runs(store_uri))
    (parent,) = parents  # the continued sweep took its parent up again
    assert parent.info.status == "FINISHED"
    states = Counter(c.data.tags[schema.SWEEP_STATE_TAG] for c in children)
    assert states == {"COMPLETE": 3, "INTERRUPTED": 1}
    killed = next(c for c in children if c.data.tags[schema.SWEEP_STATE_TAG] == "INTERRUPTED")
    assert killed.info.status == "KILLED"


def test_a_surplus_trial_two_workers_asked_for_at_once_is_not_in_the_trials_table():
    """Two workers that ask for a trial at the same moment may make one too many; the later
    ends it at once (FAIL, marked surplus). It never trained, so the parent's table of trials
    leaves it out (seen once in CI: five rows for a sweep of four trials)."""
    from trainers.cli.sweep import SURPLUS_ATTR, trials_frame

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    surplus = study.ask()
    surplus.set_user_attr(SURPLUS_ATTR, True)
    study.tell(surplus, state=optuna.trial.TrialState.FAIL)
    failed = study.ask()  # a trial that ran and failed stays in the table
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    frame = trials_frame(study)
    assert list(frame["trial"]) == [0, 1, 3]
    assert list(frame["state"]) == ["COMPLETE", "COMPLETE", "FAIL"]
