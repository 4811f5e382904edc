"""`newsdesk promote` on real trained runs: champion, previous, idempotence, refusals."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tracker.cli import main


def _promote(store: dict, *extra: str) -> int:
    return main(
        ["promote", "--experiment", store["experiment"], "--tracking-uri", store["uri"], *extra]
    )


def _best_run(client: MlflowClient, experiment: str, metric: str = "test/acc"):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return max(runs, key=lambda r: r.data.metrics[metric])


def test_promote_registers_the_best_run_as_champion_once(trained_copy, capsys):
    client = MlflowClient(tracking_uri=trained_copy["uri"])
    best = _best_run(client, "dash")
    assert _promote(trained_copy) == 0
    assert "first champion" in capsys.readouterr().out
    champion = client.get_model_version_by_alias("dash-classifier", "champion")
    assert champion.run_id == best.info.run_id
    assert champion.tags["run_id"] == best.info.run_id
    assert float(champion.tags["test/acc"]) == pytest.approx(
        best.data.metrics["test/acc"], rel=1e-5
    )
    assert champion.tags["data.fingerprint"] == best.data.tags["data.fingerprint"]

    assert _promote(trained_copy) == 0
    assert "already dash-classifier@champion" in capsys.readouterr().out
    assert len(client.search_model_versions("name = 'dash-classifier'")) == 1


def test_dry_run_changes_nothing(trained_copy, capsys):
    assert _promote(trained_copy, "--dry-run") == 0
    assert "dry run: would register" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=trained_copy["uri"])
    assert client.search_model_versions("name = 'dash-classifier'") == []


def test_better_run_replaces_champion_and_sets_previous(trained_copy, capsys):
    """Promote the worst run first (mode min), then by highest test/acc: the alias moves and
    the displaced version becomes `previous`."""
    client = MlflowClient(tracking_uri=trained_copy["uri"])
    exp = client.get_experiment_by_name("dash")
    accs = sorted(r.data.metrics["test/acc"] for r in client.search_runs([exp.experiment_id]))
    assert accs[0] < accs[-1], "the four short runs should differ in test/acc"

    assert _promote(trained_copy, "--metric", "test/acc", "--mode", "min") == 0
    worst = client.get_model_version_by_alias("dash-classifier", "champion")
    assert _promote(trained_copy) == 0  # max: the best run beats the champion on test/acc
    out = capsys.readouterr().out
    assert f"version {worst.version} is now @previous" in out
    champion = client.get_model_version_by_alias("dash-classifier", "champion")
    assert client.get_model_version_by_alias("dash-classifier", "previous").version == worst.version
    assert champion.version != worst.version


def test_weaker_candidate_never_replaces_a_better_champion(trained_copy, capsys):
    client = MlflowClient(tracking_uri=trained_copy["uri"])
    assert _promote(trained_copy) == 0
    champion = client.get_model_version_by_alias("dash-classifier", "champion")
    # retire the champion's run so the best remaining candidate is weaker than the champion
    client.set_terminated(champion.run_id, status="FAILED")
    assert _promote(trained_copy) == 0
    assert "does not beat it" in capsys.readouterr().out
    assert (
        client.get_model_version_by_alias("dash-classifier", "champion").version == champion.version
    )
    assert len(client.search_model_versions("name = 'dash-classifier'")) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope'"),
        (["--metric", "test/f9"], "has metric 'test/f9'"),
    ],
)
def test_promote_bad_input_is_one_line_exit_2(trained_copy, capsys, argv, message):
    assert _promote(trained_copy, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_no_finished_run_with_a_model_is_exit_2(store_uri, capsys):
    from tracker import TrainingLogger

    with TrainingLogger("bare", tracking_uri=store_uri) as log:
        log.log_metrics({"test/acc": 0.9}, step=1)
    assert main(["promote", "--experiment", "bare", "--tracking-uri", store_uri]) == 2
    assert "no finished run with a logged model" in capsys.readouterr().err
