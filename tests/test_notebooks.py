"""The notebook runs top to bottom, from its own folder, against a store filled with short real
runs, and draws its figure (issue 38, item 4)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tracker.cli import main

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb"


def test_compare_runs_notebook_executes_from_its_folder(trained_copy, tmp_path, monkeypatch):
    assert main(["promote", "--experiment", "dash", "--tracking-uri", trained_copy["uri"]]) == 0
    # A project as a clone has it: the store in mlruns/, the notebook in notebooks/.
    project = tmp_path / "project"
    (project / "mlruns").mkdir(parents=True)
    shutil.copy(trained_copy["uri"].removeprefix("sqlite:///"), project / "mlruns" / "mlflow.db")
    (project / "notebooks").mkdir()
    notebook_path = project / "notebooks" / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "dash")
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    ).execute()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [o for cell in code_cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(
        str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs
    )
    assert f"store sqlite:///{project / 'mlruns' / 'mlflow.db'}" in text
    assert "'version'" in text and "top_k" in text
    figure_cell = next(c for c in code_cells if "compare_figure(runs" in c.source)
    images = [o for o in figure_cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, figure_cell.outputs
    assert not (project / "notebooks" / "mlruns").exists()


def test_importing_the_plot_modules_keeps_the_backend():
    """A program (or notebook) that chose its backend keeps it after importing newsdesk's
    figure modules, and pyplot still works beside them."""
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import tracker.dashboard.plots, trainers.plots\n"
        "import matplotlib.pyplot as plt\n"
        "fig = trainers.plots.confusion_figure(__import__('numpy').eye(2, dtype=int), "
        "['a', 'b'], 't')\n"
        "print(matplotlib.get_backend(), type(fig).__name__, len(plt.get_fignums()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["svg", "Figure", "0"]


def test_jupyterlab_serves_the_notebook(tmp_path):
    """What `make notebook` starts: JupyterLab in notebooks/, serving the notebook."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jupyter = Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--allow-root",
            "--IdentityProvider.token=t",
            f"--ServerApp.runtime_dir={tmp_path}",
        ],
        cwd=NOTEBOOK.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
    )
    try:
        url = f"http://127.0.0.1:{port}/api/contents/{NOTEBOOK.name}?token=t&content=0"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.load(response)
                break
            except OSError:
                assert server.poll() is None, "jupyter lab exited"
                assert time.monotonic() < deadline, "jupyter lab did not answer in 60 s"
                time.sleep(0.5)
        assert answer["type"] == "notebook" and answer["name"] == NOTEBOOK.name
    finally:
        server.terminate()
        server.wait(timeout=30)
