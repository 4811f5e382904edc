"""A run's artifacts go through its log like everything else.

The files are copied into the log (a local disk copy) and the shipper uploads them in order,
so an upload never blocks the loop on the store, and a store that is down keeps them for
`sync` with the points. After the logger's `close` (no shipper any more) they are uploaded
at once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from tracker.shipping.wal import artifact_line
from tracker.shipping.writer import WalWriter


def stage_copy(wal: WalWriter, source: Path, artifact_path: str | None) -> None:
    """Copy `source` (a file or a folder's contents) into the log for the shipper."""
    folder = wal.stage()
    if source.is_dir():
        shutil.copytree(source, folder, dirs_exist_ok=True)
    else:
        shutil.copy2(source, folder / source.name)
    wal.write(artifact_line(folder, artifact_path))


def upload_now(client: MlflowClient, run_id: str, source: Path, artifact_path: str | None) -> None:
    if source.is_dir():
        client.log_artifacts(run_id, str(source), artifact_path)
    else:
        client.log_artifact(run_id, str(source), artifact_path)


@contextlib.contextmanager
def new_artifact(
    wal: WalWriter | None, client: MlflowClient, run_id: str, artifact_file: str
) -> Iterator[Path]:
    """A path to write `artifact_file` (validated) to: straight into a staged folder of the
    run's log (no second copy), or, with no log (`wal` None, after `close`), a temporary
    file uploaded at once."""
    name = Path(artifact_file).name
    parent = str(Path(artifact_file).parent)
    parent_or_none = None if parent == "." else parent
    if wal is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp) / name
            client.log_artifact(run_id, str(Path(tmp) / name), parent_or_none)
        return
    folder = wal.stage()
    yield folder / name
    wal.write(artifact_line(folder, parent_or_none))


def write_dict(dictionary: Mapping[str, Any], target: Path) -> None:
    """`dictionary` as JSON (YAML for .yaml/.yml, as MLflow does), non-ASCII text left
    readable in the UI."""
    with target.open("w", encoding="utf-8") as fh:
        if target.suffix in (".yaml", ".yml"):
            yaml.safe_dump(dict(dictionary), fh, indent=2, allow_unicode=True, sort_keys=False)
        else:
            json.dump(dictionary, fh, ensure_ascii=False, indent=2, default=str)
