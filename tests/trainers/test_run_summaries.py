"""What a trained run says about itself, so the MLflow UI answers questions without
post-processing: best-so-far metrics, per-class test metrics under the class names, the
datasets it used, and MLflow's standard source tags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracker import schema


@pytest.fixture(scope="module")
def runs(trained_store: dict) -> list:
    client = MlflowClient(tracking_uri=trained_store["uri"])
    exp = client.get_experiment_by_name(trained_store["experiment"])
    return client.search_runs([exp.experiment_id])


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_best_so_far_metrics_follow_the_validation_histories(trained_store, runs):
    client = MlflowClient(tracking_uri=trained_store["uri"])
    assert sorted(r.data.tags["model"] for r in runs) == ["fasttext", "linear", "lstm", "textcnn"]
    for run in runs:
        val_loss = _history(client, run.info.run_id, schema.VAL_LOSS)
        val_acc = _history(client, run.info.run_id, schema.VAL_ACC)
        best_loss = _history(client, run.info.run_id, schema.BEST_LOSS)
        best_acc = _history(client, run.info.run_id, schema.BEST_ACC)
        # Logged exactly where the running minimum / maximum improved, with its value.
        expected_loss, low = [], float("inf")
        for step, value in val_loss:
            if value < low:
                low = value
                expected_loss.append((step, value))
        expected_acc, high = [], float("-inf")
        for step, value in val_acc:
            if value > high:
                high = value
                expected_acc.append((step, value))
        assert best_loss == expected_loss
        assert best_acc == expected_acc
        assert run.data.metrics[schema.BEST_LOSS] == min(v for _, v in val_loss)
        assert run.data.metrics[schema.BEST_ACC] == max(v for _, v in val_acc)
        # best/step is where the monitored metric last improved: val/loss (min), or val/acc
        # (max) for FastText, whose hinge loss gives margins, not probabilities.
        monitor = run.data.params.get("train.monitor", schema.VAL_LOSS)
        assert monitor == (schema.VAL_ACC if run.data.tags["model"] == "fasttext" else "val/loss")
        expected = expected_acc if monitor == schema.VAL_ACC else expected_loss
        assert run.data.metrics[schema.BEST_AT_STEP] == expected[-1][0]
        assert "best_step" not in run.data.metrics  # best/step, once (the MLflow UI shows it)


def test_per_class_test_metrics_carry_the_class_names(trained_store, runs, tmp_path):
    client = MlflowClient(tracking_uri=trained_store["uri"])
    names = (trained_store["data"] / "class.txt").read_text(encoding="utf-8").split()
    assert any(not n.isascii() for n in names)  # THUCNews names its classes in Chinese
    for run in runs:
        local = client.download_artifacts(run.info.run_id, schema.TEST_REPORT_ARTIFACT, tmp_path)
        report = json.loads(Path(local).read_text(encoding="utf-8"))["classes"]
        for name in names:
            for kind in ("f1", "precision", "recall"):
                metric = f"test/{kind}/{name}"
                assert run.data.metrics[metric] == pytest.approx(report[name][kind])
        assert schema.per_class_metric("test/f1", "a:b?") == "test/f1/a_b_"


def test_every_run_logs_its_three_splits_as_datasets(trained_store, runs):
    data: Path = trained_store["data"]
    for run in runs:
        inputs = run.inputs.dataset_inputs
        by_context = {i.tags[0].value: i.dataset for i in inputs}
        assert sorted(by_context) == ["dev", "test", "train"]
        for context, dataset in by_context.items():
            file = data / f"{context}.txt"
            assert dataset.digest == hashlib.sha256(file.read_bytes()).hexdigest()[:16]
            assert json.loads(dataset.source) == {"uri": str(file)}
            assert json.loads(dataset.profile)["num_rows"] == len(
                file.read_text(encoding="utf-8").splitlines()
            )
    # Same data, same digests: the runs are told apart from runs on other data by them.
    digests = {tuple(sorted(i.dataset.digest for i in r.inputs.dataset_inputs)) for r in runs}
    assert len(digests) == 1


def test_runs_carry_mlflow_s_source_tags(runs):
    for run in runs:
        assert run.data.tags["mlflow.source.type"] == "LOCAL"
        assert run.data.tags["mlflow.source.name"]
        assert run.data.tags["mlflow.user"]


@pytest.mark.parametrize(
    "sampling", [["--system-metrics-interval", "0.5"], ["--no-system-metrics"]]
)
def test_system_metrics_are_sampled_into_the_run_unless_turned_off(
    thucnews_slice, store_uri, tmp_path, sampling
):
    from trainers.cli import main

    code = main(
        [
            "train",
            "--model",
            "lstm",
            "--data",
            str(thucnews_slice),
            "--tracking-uri",
            store_uri,
            "--experiment",
            "system",
            "--epochs",
            "3",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--set",
            "model.hidden_size=16",
            *sampling,
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("system").experiment_id])
    system = {k for k in run.data.metrics if k.startswith("system/")}
    if "--no-system-metrics" in sampling:
        assert system == set()
    else:
        assert {
            "system/cpu_utilization_percentage",
            "system/system_memory_usage_megabytes",
        } <= system
        cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
        assert all(0.0 <= m.value <= 100.0 for m in cpu)
