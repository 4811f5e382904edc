"""The wheel a user installs works: built from this checkout, installed non-editable into a
fresh virtual environment, used from a folder outside the repository.

`make` installs in editable mode, which once hid a wheel without `trainers/data/`. Here the
core alone (`pip install newsdesk`) must give a working logger and CLI, and the `trainers`
extra a working training, promotion and prediction.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.packaging

LOGGER_SCRIPT = """
import sys
from tracker import TrainingLogger
with TrainingLogger("wheel", tracking_uri=sys.argv[1], params={"a": {"b": 1}}) as log:
    for step in range(1, 11):
        log.log_metrics({"train/loss": 1.0 / step}, step=step)
print(log.run_id)
"""


def _run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so no build/ folder of an earlier build leaks in."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for top in ("tracker", "trainers"):
        shutil.copytree(ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    _run(build, source)
    (built,) = out.glob("newsdesk-*.whl")
    return built


def test_the_wheel_holds_every_module_of_both_packages(wheel):
    packaged = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    sources = {
        str(path.relative_to(ROOT))
        for top in ("tracker", "trainers")
        for path in (ROOT / top).rglob("*.py")
    }
    assert packaged == sources


def test_the_wheel_holds_the_dashboards_page_and_vendored_chart_library(wheel):
    """`newsdesk ui` serves these from the installed package: no CDN, no source checkout."""
    names = set(zipfile.ZipFile(wheel).namelist())
    static = ROOT / "tracker" / "board" / "static"
    expected = {str(p.relative_to(ROOT)) for p in static.rglob("*") if p.is_file()}
    assert "tracker/board/static/vendor/uplot/LICENSE" in expected
    assert expected <= names, expected - names


def test_a_fresh_environment_installs_the_core_then_the_trainers_extra(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    constraints = ["-c", str(ROOT / "constraints.txt")]
    newsdesk = str(venv / "bin" / "newsdesk")
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"

    # The core: the logger and the tracking commands, no torch.
    _run([*pip, *constraints, str(wheel)], tmp_path)
    assert "newsdesk" in _run([newsdesk, "--version"], tmp_path).stdout
    assert "train" in _run([newsdesk, "--help"], tmp_path).stdout
    for command in ("compare", "promote", "sync"):  # the tracker's own commands, core only
        assert "--tracking-uri" in _run([newsdesk, command, "--help"], tmp_path).stdout
    no_torch = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, cwd=tmp_path
    )
    assert no_torch.returncode != 0  # the core did not pull the training stack in
    run_id = _run([str(venv / "bin" / "python"), "-c", LOGGER_SCRIPT, store], tmp_path).stdout
    client = MlflowClient(tracking_uri=store)
    assert len(client.get_metric_history(run_id.strip(), "train/loss")) == 10
    refused = subprocess.run(
        [newsdesk, "train", "--model", "fasttext", "--tracking-uri", store],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "pip install 'newsdesk[trainers]'" in refused.stderr
    assert "Traceback" not in refused.stderr

    # The trainers extra: a tiny training on the bundled corpus, promoted, then predicting.
    _run([*pip, *constraints, f"{wheel}[trainers]"], tmp_path)
    train = [newsdesk, "train", "--model", "fasttext", "--max-steps", "3", "--quiet"]
    _run([*train, "--tracking-uri", store, "--experiment", "wheel"], tmp_path)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("wheel").experiment_id], "tags.model = 'fasttext'"
    )
    assert run.info.status == "FINISHED" and run.outputs.model_outputs
    _run([newsdesk, "promote", "--tracking-uri", store, "--experiment", "wheel"], tmp_path)
    predicted = _run(
        [newsdesk, "predict", "--tracking-uri", store, "--experiment", "wheel", "央行宣布降准"],
        tmp_path,
    )
    assert "央行宣布降准" in predicted.stdout
