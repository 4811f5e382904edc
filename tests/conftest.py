"""Shared fixtures: a real SQLite MLflow store per test, and the real corpus by path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data",
        default=os.environ.get("NEWSDESK_DATA"),
        help="THUCNews folder (default: $NEWSDESK_DATA)",
    )


# What a test needs, read from where it lives and the fixtures it uses, so that `make check`
# (`-m "not (server or browser or packaging or corpus or slow)"`) leaves out every test that
# needs the corpus, a server, a browser or a real training without each test saying so.
_FOLDER_MARKS = {"server": "server", "browser": "browser", "integrations": "slow"}
_FIXTURE_MARKS = {
    "thucnews_dir": "corpus",
    "postgres": "server",
    "pg_server": "server",
    "server": "server",
}


# A rough cost of a test by what it needs, for ordering the modules (see below).
_MARK_COST = {"packaging": 10.0, "browser": 10.0, "server": 3.0, "slow": 3.0, "corpus": 0.5}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent.name
        if folder in _FOLDER_MARKS:
            item.add_marker(_FOLDER_MARKS[folder])
        for fixture, mark in _FIXTURE_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)
    # The costliest modules first: the workers of `make test` take whole modules
    # (`--dist loadfile --no-loadscope-reorder`), and a long module taken last keeps one core
    # busy while the other has nothing left to do.
    cost: dict[str, float] = {}
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        cost[item.nodeid.split("::")[0]] = cost.get(item.nodeid.split("::")[0], 0.0) + max(
            [_MARK_COST.get(m, 0.1) for m in marks] or [0.1]
        )
    items.sort(key=lambda item: -cost[item.nodeid.split("::")[0]])


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow database, made once: migrations take seconds."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store_uri(tmp_path: Path, _template_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite tracking store in tmp_path; the working directory is tmp_path too."""
    store = tmp_path / "mlruns"
    store.mkdir()
    shutil.copy(_template_db, store / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{store / 'mlflow.db'}"


@pytest.fixture(scope="session")
def thucnews_dir(pytestconfig: pytest.Config) -> Path:
    """The real THUCNews folder; its absence is an error, not a skip."""
    value = pytestconfig.getoption("--data")
    if not value:
        raise pytest.UsageError("set NEWSDESK_DATA or pass --data to the THUCNews folder")
    path = (pytestconfig.invocation_params.dir / value).resolve()  # tests may chdir
    if not (path / "train.txt").is_file():
        raise pytest.UsageError(f"{path} has no train.txt (NEWSDESK_DATA / --data)")
    return path


def newsdesk_command(*args: str) -> list[str]:
    """The installed `newsdesk` console script with `args`, for tests that need a process."""
    import sys

    return [str(Path(sys.executable).with_name("newsdesk")), *args]


# How long a test waits for a training it started to reach the point it signals or inspects.
# Those waits end as soon as the process exits, so this bound only stops a hang; CI, with
# two trainings on two cores, once needed more than 300 s to store 130 steps.
PROGRESS_TIMEOUT_S = 900


def run_ok(command: list[str], *, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `command` to the end; it must succeed (the failure shows the end of its stderr)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{command[:3]} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def run_refused(command: list[str], message: str, *, timeout: float = 300) -> None:
    """Run `command`; it must stop as a usage error (exit 2) whose stderr says `message`."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 2, f"{command[:3]} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert message in done.stderr


def write_slice(source: Path, target: Path, sizes: dict[str, int]) -> Path:
    """Copy the first lines of each real split (and class.txt) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "class.txt", target / "class.txt")
    for split, n in sizes.items():
        with (source / f"{split}.txt").open(encoding="utf-8") as fh:
            lines = [next(fh) for _ in range(n)]
        (target / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    return target


# THUCNews's topics under their original Chinese names.
CHINESE_NAMES = {
    "finance": "财经",
    "realty": "房产",
    "stocks": "股票",
    "education": "教育",
    "science": "科技",
    "society": "社会",
    "politics": "时政",
    "sports": "体育",
    "game": "游戏",
    "entertainment": "娱乐",
}


def chinese_class_names(folder: Path) -> list[str]:
    """Rewrite `class.txt` with the Chinese names, so that names outside ASCII are tested."""
    path = folder / "class.txt"
    names = [CHINESE_NAMES[n] for n in path.read_text(encoding="utf-8").split()]
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return names


@pytest.fixture
def thucnews_slice(thucnews_dir: Path, tmp_path: Path) -> Path:
    return write_slice(thucnews_dir, tmp_path / "slice", {"train": 640, "dev": 200, "test": 200})


SMALL_MODELS = [
    "--set",
    "model.buckets=5000",
    "--set",
    "model.num_filters=16",
    "--set",
    "model.hidden_size=16",
    "--set",
    "train.eval_every=5",
]


@pytest.fixture(scope="session")
def trained_store(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four short real runs (linear, fasttext, textcnn, lstm) on a slice of THUCNews, made once.

    Tests that change the store use `trained_copy`, which copies the database (the artifacts,
    models included, stay shared and are only read).
    """
    from tracker.cli import main

    root = tmp_path_factory.mktemp("trained")
    data = write_slice(thucnews_dir, root / "slice", {"train": 640, "dev": 200, "test": 200})
    chinese_class_names(data)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    code = main(
        [
            "train",
            "--model",
            "all",
            "--data",
            str(data),
            "--tracking-uri",
            uri,
            "--experiment",
            "dash",
            "--epochs",
            "2",
            "--quiet",
            "--cache-dir",
            str(root / "cache"),
            *SMALL_MODELS,
        ]
    )
    assert code == 0
    return {"uri": uri, "experiment": "dash", "data": data, "root": root}


def copy_store(uri: str, folder: Path) -> str:
    """A copy of a SQLite store's database in `folder` (the artifacts stay shared, read only)."""
    target = folder / "mlflow.db"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(uri.removeprefix("sqlite:///"), target)
    return f"sqlite:///{target}"


def dashboard_settings(base_url: str, timeout: float = 30) -> dict:
    """The `/api/settings` of a `newsdesk ui` at `base_url`, once it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url.rstrip('/')}/api/settings", timeout=5) as a:
                return json.load(a)
        except OSError:
            assert time.monotonic() < deadline, f"the dashboard at {base_url} never answered"
            time.sleep(0.2)


@pytest.fixture
def trained_copy(trained_store: dict, tmp_path: Path) -> dict:
    return {**trained_store, "uri": copy_store(trained_store["uri"], tmp_path / "copy")}


# ----- real servers: a PostgreSQL cluster for the session, an mlflow server per test ---------
PG_TEMPLATE = "mlflow_template"


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL on a free loopback port, with a migrated MLflow template database.

    Migrating takes seconds, so it is done once (`mlflow db upgrade`, a separate process that
    leaves no connection open) and each test's database is a copy of the template.
    """
    import subprocess
    import sys

    from tracker.server.postgres import LocalPostgres, PostgresConfig

    pg = LocalPostgres(PostgresConfig(durable=False)).start()
    try:
        uri = pg.create_database(PG_TEMPLATE)
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        subprocess.run([mlflow_bin, "db", "upgrade", uri], check=True, capture_output=True)
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def pg_database(postgres, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated MLflow database for this test; returns its URI."""
    import re
    import uuid

    name = re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    return postgres.create_database(name, template=PG_TEMPLATE)


@pytest.fixture
def pg_server(pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real `mlflow server` on this test's PostgreSQL database, on a free loopback port."""
    from tracker.server.mlflow_server import TrackingServer

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    server = TrackingServer.on_free_port(pg_database, tmp_path / "artifacts").start()
    yield server
    server.stop()
