"""The command line follows MLflow's conventions: the store and experiment from the environment,
exit codes that say whose fault a failure was, help with defaults, readable output in a log."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from importlib import metadata
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL_MODELS, newsdesk_command
from tracker import schema
from tracker.cli import build_parser, main
from tracker.server.ports import free_port

SMALL = {
    "all": SMALL_MODELS,
    "fasttext": ["--set", "model.buckets=5000"],
    "textcnn": ["--set", "model.num_filters=16"],
}


def _tiny_train(data: Path, model: str, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--max-steps",
        "6",
        *SMALL[model],
        *extra,
    ]


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def test_model_all_with_only_the_environment_variable_puts_every_run_in_that_store(
    thucnews_slice, tmp_path, monkeypatch
):
    """The README's team recipe: before the fix, the second and third runs went to
    ./mlruns/mlflow.db because model logging deleted MLFLOW_TRACKING_URI."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    team = f"sqlite:///{tmp_path / 'team' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)
    assert main([*_tiny_train(thucnews_slice, "all", "--quiet")]) == 0
    assert os.environ["MLFLOW_TRACKING_URI"] == team  # the environment is left as it was
    runs = _runs(team)
    models = sorted(r.data.tags[schema.MODEL_TAG] for r in runs)
    assert models == ["fasttext", "linear", "lstm", "textcnn"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.outputs.model_outputs for r in runs)  # each model was logged into its run
    assert not (work / "mlruns" / "mlflow.db").exists()


def test_experiment_comes_from_mlflow_experiment_name(thucnews_slice, store_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    args = _tiny_train(thucnews_slice, "fasttext", "--quiet", "--tracking-uri")
    assert main([*args, store_uri]) == 0
    client = MlflowClient(tracking_uri=store_uri)
    assert client.get_experiment_by_name("from-env") is not None
    assert client.get_experiment_by_name("newsdesk") is None
    # ...and the reading side uses the same default.
    out = Path("out")
    assert main(["compare", "--tracking-uri", store_uri, "--out", str(out)]) == 0
    assert (out / "compare.csv").is_file()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "unknown-exp")
    assert main(["compare", "--tracking-uri", store_uri]) == 2


def test_progress_in_a_log_is_a_few_plain_lines_per_epoch(thucnews_slice, store_uri, capsys):
    """Not a terminal: no carriage-return frames, a handful of lines per epoch."""
    args = _tiny_train(thucnews_slice, "fasttext", "--tracking-uri", store_uri)
    args[args.index("--max-steps") + 1] = "10"  # 640 lines, batch 128: 5 steps an epoch
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    progress = [line for line in err.splitlines() if " step " in line]
    assert progress and len(progress) <= 12
    assert all(line.startswith("fasttext: step ") for line in progress)  # names the model
    assert progress[-1].startswith("fasttext: step 10/10")


def test_a_training_process_shows_no_dependency_warnings(thucnews_slice, tmp_path):
    """What a user's screen (or CI log) gets from one training: our lines, nothing of MLflow's."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    proc = subprocess.run(
        newsdesk_command(*_tiny_train(thucnews_slice, "textcnn", "--tracking-uri", uri)),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for noise in ("Add type hints", "Downloading artifacts", "Warning", "WARNING", "INFO"):
        assert noise not in proc.stderr, proc.stderr
    assert "textcnn: run" in proc.stdout


class _Failing(http.server.BaseHTTPRequestHandler):
    """A tracking server that answers every request with HTTP 500."""

    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"internal error")

    do_GET = do_POST = _fail

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def failing_server(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_server_errors_and_refused_connections_exit_1_in_one_line(
    failing_server, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    refused = f"http://127.0.0.1:{free_port()}"
    for uri in (failing_server, refused):
        assert main(["compare", "--tracking-uri", uri, "--experiment", "x"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("newsdesk compare: failed: "), err
        assert "--debug" in err[0]
    assert main(["--debug", "compare", "--tracking-uri", refused, "--experiment", "x"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_usage_errors_exit_2(store_uri, capsys):
    assert main(["compare", "--tracking-uri", store_uri, "--experiment", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("newsdesk compare: error: unknown experiment")
    with pytest.raises(SystemExit) as usage:
        main(["train", "--model", "nope"])
    assert usage.value.code == 2


def test_every_option_has_help_with_its_default():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse's own
    assert set(commands) >= {"train", "demo", "resume", "sync", "compare", "promote", "predict"}
    for name, command in commands.items():
        help_text = command.format_help()
        for action in command._actions:  # noqa: SLF001
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"newsdesk {name} {action.option_strings[0]} has no help"
            takes_value = action.nargs != 0
            if takes_value and not action.required:
                formatted = command._get_formatter()._expand_help(action)  # noqa: SLF001
                assert "default" in formatted, f"newsdesk {name} {action.option_strings[0]}"
        assert "--tracking-uri" in help_text or name == "server"


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"newsdesk {metadata.version('newsdesk')}"


def test_set_reads_a_folder_setting_as_a_path():
    """`--set data.cache_dir=DIR` once reached the pipeline as a string and failed there."""
    from pathlib import Path

    from trainers.cli.overrides import typed_overrides
    from trainers.config import DataConfig

    values = typed_overrides(DataConfig, {"cache_dir": "/tmp/x", "embeddings": "none"}, "data")
    assert values == {"cache_dir": Path("/tmp/x"), "embeddings": None}
