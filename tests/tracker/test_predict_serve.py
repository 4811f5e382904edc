"""`newsdesk predict` and `mlflow models serve` on the promoted champion agree."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow.artifacts
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command
from tracker.cli import main
from tracker.dashboard.predict import load_model, model_location
from tracker.store.location import resolve_store

HEADLINES = [
    "央行宣布下调存款准备金率",
    "湖人队主场击败勇士队",
    "新款游戏主机正式发售",
    "北京二手房成交量回升",
]


@pytest.fixture
def champion(trained_copy):
    assert main(["promote", "--experiment", "dash", "--tracking-uri", trained_copy["uri"]]) == 0
    return trained_copy


def _predict(store, *extra):
    return main(["predict", "--experiment", "dash", "--tracking-uri", store["uri"], *extra])


def test_predict_prints_labels_with_probabilities(champion, capsys):
    capsys.readouterr()
    assert _predict(champion, "--top-k", "3", *HEADLINES) == 0
    lines = capsys.readouterr().out.splitlines()
    names = (champion["data"] / "class.txt").read_text(encoding="utf-8").split()
    labels = [line.split("\t")[0] for line in lines if not line.startswith("\t")]
    assert len(labels) == len(HEADLINES) and set(labels) <= set(names)
    tops = [line for line in lines if line.startswith("\ttop 3:")]
    assert len(tops) == len(HEADLINES) and all(t.count(":") == 4 for t in tops)


def test_predict_works_with_pickle_deserialization_off(champion, tmp_path):
    """The logged model is code plus plain files: loading it unpickles nothing."""
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    args = ["predict", "--experiment", "dash", "--tracking-uri", champion["uri"], *HEADLINES]
    proc = subprocess.run(
        newsdesk_command(*args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    names = (champion["data"] / "class.txt").read_text(encoding="utf-8").split()
    labels = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert len(labels) == len(HEADLINES) and set(labels) <= set(names)


def test_predict_file_writes_csv(champion, tmp_path, capsys):
    source = tmp_path / "headlines.txt"
    texts = (champion["data"] / "test.txt").read_text(encoding="utf-8").splitlines()[:50]
    source.write_text("\n".join(t.split("\t")[0] for t in texts) + "\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    assert _predict(champion, "--file", str(source), "--out", str(out)) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 50 and list(frame.columns[:3]) == ["text", "label", "probability"]
    assert frame["probability"].between(0, 1).all()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "no headlines (the file is empty)"),
        ("bad-uri", "does not resolve"),
    ],
)
def test_predict_bad_input_is_one_line_exit_2(champion, tmp_path, capsys, setup, message):
    if setup == "empty":
        empty = tmp_path / "empty.txt"
        empty.write_text("\n")
        code = _predict(champion, "--file", str(empty))
    else:
        code = _predict(champion, "--model-uri", "models:/no-such-model@champion", "x")
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_endpoint_agrees_with_predict(champion, capsys):
    capsys.readouterr()
    assert _predict(champion, *HEADLINES) == 0
    expected = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    port = _free_port()
    bin_dir = os.path.dirname(sys.executable)  # mlflow starts uvicorn from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": champion["uri"],
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    mlflow_bin = os.path.join(bin_dir, "mlflow")
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "models",
            "serve",
            "-m",
            "models:/dash-classifier@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        body = json.dumps(
            {"dataframe_split": {"columns": ["text"], "data": [[h] for h in HEADLINES]}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    assert [p["label"] for p in predictions] == expected


@pytest.mark.parametrize("check", [True, False])
def test_the_requirements_check_runs_only_when_asked(champion, tmp_path, caplog, check):
    """`newsdesk predict` skips MLflow's 1 s comparison of the model's requirements with the
    installed packages (`--debug` runs it): a model asking for another torch loads either way,
    with MLflow's warning only when checked."""
    store = resolve_store(champion["uri"]).tracking_uri
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    location = model_location(client, "models:/dash-classifier@champion")
    local = Path(
        mlflow.artifacts.download_artifacts(location, dst_path=str(tmp_path), tracking_uri=store)
    )
    requirements = local / "requirements.txt"
    pinned = [line for line in requirements.read_text().splitlines() if line.startswith("torch==")]
    assert pinned, requirements.read_text()
    requirements.write_text(requirements.read_text().replace(pinned[0], "torch==1.0.0"))
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        model = load_model(str(local), champion["uri"], check_requirements=check)
    assert len(model.predict(pd.DataFrame({"text": HEADLINES}))) == len(HEADLINES)
    warned = "torch==1.0.0" in caplog.text
    assert warned == check, caplog.text[-1000:]


# Loads downloaded models in a Python that has the dependencies but no newsdesk: `-S` skips
# site-packages' .pth files (the editable install's finder among them), and only the
# site-packages folders themselves (argv[1]) go on the path.
_LOAD_WITHOUT_NEWSDESK = """
import importlib, importlib.util, json, sys
sys.path.extend(json.loads(sys.argv[1]))
assert importlib.util.find_spec("trainers") is None, "newsdesk is importable"
import mlflow.pyfunc, pandas
labels = [
    mlflow.pyfunc.load_model(path).predict(pandas.DataFrame({"text": json.loads(sys.argv[3])}))[
        "label"
    ].tolist()
    for path in json.loads(sys.argv[2])
]
trainers_file = importlib.import_module("trainers").__file__  # from the model's code zip
print(json.dumps({"labels": labels, "trainers": trainers_file}))
"""


def test_each_model_carries_its_code_in_one_archive_and_loads_without_newsdesk(
    trained_copy, tmp_path
):
    """The tracker and trainers packages travel as one zip in `code/` (a model's files are
    uploaded one request each; as folders they were 94 of 101 files), and a Python without
    newsdesk installed imports them from it and predicts as newsdesk does."""
    store = resolve_store(trained_copy["uri"]).tracking_uri
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("dash").experiment_id
    logged = client.search_logged_models(experiment_ids=[experiment])
    assert len(logged) == 4  # the linear baseline and the three neural models
    folders, expected = [], []
    for index, model in enumerate(logged):
        local = Path(
            mlflow.artifacts.download_artifacts(
                model.artifact_location, dst_path=str(tmp_path / str(index)), tracking_uri=store
            )
        )
        files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
        assert [f for f in files if f.startswith("code/")] == ["code/newsdesk-code.zip"], files
        assert len(files) <= 10, files
        predicted = load_model(str(local), trained_copy["uri"], check_requirements=False)
        expected.append(predicted.predict(pd.DataFrame({"text": HEADLINES}))["label"].tolist())
        folders.append(str(local))
    workdir = tmp_path / "elsewhere"  # not the checkout, whose packages `-c` would find
    workdir.mkdir()
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    proc = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            _LOAD_WITHOUT_NEWSDESK,
            json.dumps(site_packages),
            json.dumps(folders),
            json.dumps(HEADLINES),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["labels"] == expected
    assert "newsdesk-code.zip" in loaded["trainers"], loaded["trainers"]
