"""Promotion at any number of runs, READY models only, and a champion moved by one promotion
at a time (a lock in the registry's own store)."""

from __future__ import annotations

import subprocess
import sys

import mlflow.pyfunc
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command
from tracker.cli import main
from tracker.dashboard.registry import promote


class _Echo(mlflow.pyfunc.PythonModel):
    """The smallest model that loads: `promote` loads the winner before it crowns it."""

    def predict(self, context, model_input, params=None):
        return model_input


def _give_files(client, model_id: str, folder) -> None:
    mlflow.pyfunc.save_model(str(folder), python_model=_Echo())
    client.log_model_artifacts(model_id, str(folder))


def _run_with_model(client, exp_id: str, acc: float, status=LoggedModelStatus.READY) -> tuple:
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "test/acc", acc)
    model = client.create_logged_model(exp_id, name="model", source_run_id=run.info.run_id)
    client.finalize_logged_model(model.model_id, status)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, model.model_id


@pytest.mark.slow
def test_the_best_of_101_runs_wins_and_only_a_ready_model_is_registered(store_uri, tmp_path):
    """On main the first page (100) of logged models was read: with 101 runs, test/acc 0.5 was
    promoted over 0.99; a PENDING model was picked over a READY one."""
    client = MlflowClient(tracking_uri=store_uri)
    exp_id = client.create_experiment("many")
    best_run, ready = _run_with_model(client, exp_id, 0.99)  # the oldest of them all
    _give_files(client, ready, tmp_path / "model")
    newer = client.create_logged_model(exp_id, name="model", source_run_id=best_run)  # PENDING
    for _ in range(100):
        _run_with_model(client, exp_id, 0.5)
    _run_with_model(client, exp_id, 0.999, status=LoggedModelStatus.PENDING)  # upload unfinished
    result = promote("many", tracking_uri=store_uri)
    assert result.promoted and result.candidate.run_id == best_run
    champion = client.get_model_version_by_alias("many-classifier", "champion")
    assert champion.run_id == best_run
    assert champion.source == client.get_logged_model(ready).artifact_location
    assert champion.source != client.get_logged_model(newer.model_id).artifact_location


def test_two_promotions_at_once_make_one_new_version(trained_copy, capsys):
    uri = trained_copy["uri"]
    base = ["promote", "--experiment", "dash", "--tracking-uri", uri]
    assert main([*base, "--mode", "min"]) == 0  # the worst run is the champion to displace
    client = MlflowClient(tracking_uri=uri)
    displaced = client.get_model_version_by_alias("dash-classifier", "champion")
    procs = [
        subprocess.Popen(newsdesk_command(*base), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    versions = client.search_model_versions("name = 'dash-classifier'")
    print(f"two concurrent promotions: {outs}; versions now {sorted(v.version for v in versions)}")
    assert len(versions) == 2  # the displaced one and exactly one new version
    champion = client.get_model_version_by_alias("dash-classifier", "champion")
    previous = client.get_model_version_by_alias("dash-classifier", "previous")
    assert champion.version != displaced.version and previous.version == displaced.version
    assert client.search_registered_models("name LIKE '%promotion-lock%'") == []  # released


_HAMMER = """
import sys
from mlflow.tracking import MlflowClient
from tracker.dashboard.registry_lock import promotion_lock
client = MlflowClient(tracking_uri=sys.argv[1])
for _ in range(int(sys.argv[2])):
    with promotion_lock(client, "hammered", poll_s=0.0):
        pass
"""


@pytest.mark.slow
def test_the_lock_survives_a_release_between_a_clash_and_its_error(store_uri):
    """On a name clash MLflow's SQL store looks the existing model up to word its error; a
    holder that released the lock in between made that create fail with RESOURCE_DOES_NOT_EXIST,
    which the lock re-raised (one promote of two exited 2). Three processes that take and
    release the lock in a tight loop hit that window within a few hundred tries."""
    client = MlflowClient(tracking_uri=store_uri)
    client.search_registered_models()  # the schema exists before the processes race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HAMMER, store_uri, "150"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-600:] for e in errors]
    assert client.search_registered_models("name LIKE '%promotion-lock%'") == []
