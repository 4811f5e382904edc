"""The notebook runs top to bottom against a store filled with short real runs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tracker.cli import main

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb"


def test_compare_runs_notebook_executes(trained_copy, monkeypatch):
    assert main(["promote", "--experiment", "dash", "--tracking-uri", trained_copy["uri"]]) == 0
    monkeypatch.setenv("NEWSDESK_TRACKING_URI", trained_copy["uri"])
    monkeypatch.setenv("NEWSDESK_EXPERIMENT", "dash")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "'version'" in text and "top_k" in text
