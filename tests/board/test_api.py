"""The dashboard's API over a real SQLite store written by the real logger."""

from __future__ import annotations

import math
import time

import pytest
from starlette.testclient import TestClient

from tracker import TrainingLogger, WriterConfig, schema
from tracker.board.app import BoardConfig, build_app
from tracker.board.sources import RestSource, SqlSource

CLASSES = ["体育", "财经", "房产"]


def _log_run(uri: str, name: str, model: str, fingerprint: str, acc: float, **extra) -> str:
    tags = {"model": model, "data.fingerprint": fingerprint}
    with TrainingLogger(
        "board", run_name=name, tracking_uri=uri, tags=tags, writer_config=WriterConfig(),
        params={"lr": extra.get("lr", 0.001), "batch_size": 64},
    ) as log:  # fmt: skip
        for step in range(1, 51):
            log.log_metrics({"train/loss": 2.0 / step}, step=step)
            if step % 10 == 0:
                log.log_metrics({"val/loss": 1.0 / step, "val/acc": acc * step / 50}, step=step)
        end = {"test/acc": acc, "test/loss": 1 - acc}
        end.update({f"test/f1/{c}": acc - i * 0.1 for i, c in enumerate(CLASSES)})
        log.log_metrics(end, step=50)
        for step in (10, 20):
            confusion = [[step, 1, 0], [2, 5, 0], [0, 0, 3]]
            record = {"step": step, "labels": CLASSES, "confusion": confusion}
            log.log_dict(record, f"evaluations/dev/step_{step:09d}.json")
        return log.run_id


@pytest.fixture
def store(store_uri):
    runs = {
        "linear": _log_run(store_uri, "linear", "linear", "data-a", 0.80),
        "fasttext": _log_run(store_uri, "fasttext", "fasttext", "data-a", 0.85, lr=0.01),
        "other-data": _log_run(store_uri, "fasttext-b", "fasttext", "data-b", 0.70),
    }
    return {"uri": store_uri, "runs": runs}


def _client(uri: str) -> TestClient:
    return TestClient(build_app(BoardConfig(uri, experiment="board")))


def _experiment(client: TestClient) -> str:
    settings = client.get("/api/settings").json()
    assert {"id": settings["experiment"], "name": "board"} in settings["experiments"]
    return settings["experiment"]


def test_runs_list_their_status_model_and_final_metrics(store):
    client = _client(store["uri"])
    exp = _experiment(client)
    runs = {r["name"]: r for r in client.get(f"/api/runs?experiment={exp}").json()["runs"]}
    assert set(runs) == {"linear", "fasttext", "fasttext-b"}
    assert runs["fasttext"]["status"] == "FINISHED"
    assert runs["fasttext"]["model"] == "fasttext"
    assert runs["fasttext"]["metrics"]["test/acc"] == pytest.approx(0.85)


def test_compare_shows_differing_params_delta_to_the_baseline_on_the_same_data_and_f1(store):
    client = _client(store["uri"])
    exp = _experiment(client)
    ids = [store["runs"][k] for k in ("linear", "fasttext", "other-data")]
    body = client.get(f"/api/compare?experiment={exp}&runs={','.join(ids)}").json()
    assert list(body["params"]) == ["lr"]  # batch_size is the same everywhere
    rows = {r["name"]: r for r in body["rows"]}
    assert rows["fasttext"]["baseline"]["name"] == "linear"
    assert rows["fasttext"]["metrics"]["test/acc"]["delta"] == pytest.approx(0.05)
    # Different data: no baseline, no difference.
    assert rows["fasttext-b"]["baseline"] is None
    assert rows["fasttext-b"]["metrics"]["test/acc"]["delta"] is None
    assert sorted(body["classes"]) == sorted(CLASSES)
    fasttext_f1 = dict(zip(body["classes"], body["f1"][1], strict=True))
    assert fasttext_f1["财经"] == pytest.approx(0.75)


def test_curves_come_cut_to_the_width_with_their_counts(store):
    client = _client(store["uri"])
    exp = _experiment(client)
    run = store["runs"]["fasttext"]
    body = client.get(
        f"/api/curves?experiment={exp}&runs={run}&keys=train/loss,val/acc&width=10"
    ).json()
    loss = body["curves"][run]["train/loss"]
    assert loss["total"] == 50 and loss["shown"] <= 40
    assert max(loss["y"]) == 2.0 and loss["x"][0] == 1
    assert body["curves"][run]["val/acc"]["total"] == 5
    assert client.get(f"/api/curves?experiment={exp}&runs={run}&keys=a&x=epoch").status_code == 400


def test_evaluations_come_in_step_order(store):
    client = _client(store["uri"])
    body = client.get(f"/api/evaluations?run={store['runs']['fasttext']}").json()
    assert [e["step"] for e in body["evaluations"]] == [10, 20]
    assert body["evaluations"][1]["confusion"][0] == [20, 1, 0]


def test_a_running_run_changes_version_with_each_new_point_and_shows_it(store_uri):
    client = _client(store_uri)
    log = TrainingLogger("board", tracking_uri=store_uri, writer_config=WriterConfig())
    try:
        log.log_metrics({"train/loss": 1.0}, step=1)
        assert log.flush(timeout=30)
        exp = _experiment(client)
        first = client.get(f"/api/runs?experiment={exp}").json()["runs"][0]
        assert first["status"] == "RUNNING" and first["points"] == {"train/loss": 1}
        log.log_metrics({"train/loss": math.nan}, step=2)
        assert log.flush(timeout=30)
        time.sleep(0.25)  # the listing is cached for a moment
        second = client.get(f"/api/runs?experiment={exp}").json()["runs"][0]
        assert second["version"] != first["version"]
        curve = client.get(
            f"/api/curves?experiment={exp}&runs={log.run_id}&keys=train/loss"
        ).json()["curves"][log.run_id]["train/loss"]
        assert curve["total"] == 2 and curve["markers"] == [{"x": 2.0, "kind": "nan"}]
    finally:
        log.close()
    time.sleep(0.25)
    ended = client.get(f"/api/runs?experiment={exp}").json()["runs"][0]
    assert ended["status"] == "FINISHED"


def test_a_failed_run_shows_its_status_and_reason(store_uri):
    with pytest.raises(RuntimeError):
        with TrainingLogger("board", tracking_uri=store_uri, writer_config=WriterConfig()) as log:
            log.log_metrics({"train/loss": 1.0}, step=1)
            log.set_tags({schema.FAILURE_REASON_TAG: "loss became NaN at step 2"})
            raise RuntimeError("diverged")
    client = _client(store_uri)
    (run,) = client.get(f"/api/runs?experiment={_experiment(client)}").json()["runs"]
    assert run["status"] == "FAILED"
    assert run["failure_reason"] == "loss became NaN at step 2"


def test_an_experiment_id_that_is_not_one_is_a_bad_request(store):
    client = _client(store["uri"])
    answer = client.get("/api/runs?experiment=abc")
    assert answer.status_code == 400 and "experiment" in answer.json()["error"]


def test_the_page_and_its_vendored_chart_library_are_served(store):
    client = _client(store["uri"])
    page = client.get("/")
    assert page.status_code == 200 and "static/vendor/uplot/uPlot.iife.min.js" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("http-equiv", "")
    script = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and len(script.content) > 20_000


@pytest.mark.server
def test_sql_and_rest_sources_read_the_same_runs(store, tmp_path):
    from tracker.server.mlflow_server import TrackingServer

    server = TrackingServer.on_free_port(store["uri"], tmp_path / "artifacts").start()
    try:
        exp = SqlSource(store["uri"]).experiments()[-1]["id"]
        sql = {r.id: r for r in SqlSource(store["uri"]).runs(exp)}
        rest = {r.id: r for r in RestSource(server.url).runs(exp)}
        assert sql.keys() == rest.keys()
        run = store["runs"]["fasttext"]
        assert sql[run].metrics == rest[run].metrics
        assert sql[run].params == rest[run].params
        a = SqlSource(store["uri"]).history(run, "train/loss")
        b = RestSource(server.url).history(run, "train/loss")
        assert sorted(zip(*a, strict=True)) == sorted(zip(*b, strict=True))
    finally:
        server.stop()


def test_the_registry_lists_aliases_versions_and_their_runs(store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store["uri"])
    client.create_registered_model("board-classifier")
    for name in ("linear", "fasttext"):
        run = store["runs"][name]
        client.create_model_version("board-classifier", f"runs:/{run}/model", run_id=run)
    client.set_registered_model_alias("board-classifier", "champion", "2")
    client.set_registered_model_alias("board-classifier", "previous", "1")
    (model,) = _client(store["uri"]).get("/api/registry").json()["models"]
    assert model["aliases"] == {"champion": "2", "previous": "1"}
    assert [v["version"] for v in model["versions"]] == ["2", "1"]
    newest = model["versions"][0]
    assert newest["aliases"] == ["champion"]
    assert (newest["run_id"], newest["run_name"]) == (store["runs"]["fasttext"], "fasttext")
    assert newest["experiment_id"] == _experiment(_client(store["uri"]))
