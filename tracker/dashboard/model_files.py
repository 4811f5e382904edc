"""A registered newsdesk model found and loaded without importing MLflow, for `newsdesk predict`.

Why: from a fresh process, importing MLflow and opening its SQLAlchemy store take longer than
importing torch and predicting one headline; a person asking for one prediction from the shell
waited mostly for them. MLflow is not needed to answer "which files does this alias name": the
registry is read with the standard library (the tables of a SQLite store, the REST API of a
tracking server), files on a local path are read where they are, remote ones are downloaded
once (by MLflow) into a cache under the version's identity, and a model newsdesk logged
(MLflow "models from code" whose configuration names a `loader`) is loaded by calling that
loader on its checkpoint, which is all its pyfunc wrapper does.

The alias is looked up on every call, so a promotion is seen at once; a cached version is
never stale, because a version's files do not change. Anything this module does not know (a
PostgreSQL store, a model of another kind, a lookup that fails) gives None, and the caller
takes MLflow's full path, which also says what is wrong in MLflow's words.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.logger.text_input import texts_of
from tracker.store.location import sqlite_path

# MLflow's marks in the SQLite tables: a deleted version keeps its row with this stage.
_DELETED_STAGE = "Deleted_Internal"
# The shape of a model newsdesk logs (`tracker.logger.text_model`): MLflow's loader of
# models from code, the loader path in the configuration, the checkpoint as an artifact.
_CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
_LOADER_KEY, _CHECKPOINT_KEY = "loader", "checkpoint"
_CODE_ARCHIVE = "newsdesk-code.zip"
_LOOKUP_TIMEOUT_S = 10.0
# Downloaded versions kept in the cache (the most recently used); older ones are removed.
CACHE_KEEP = 5


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version: what identifies its files."""

    name: str
    version: str
    source: str  # where its files are (a file:// URI, mlflow-artifacts:/..., models:/...)
    run_id: str
    created_ms: int

    def cache_key(self, store_uri: str) -> str:
        fields = (store_uri, self.name, self.version, self.source, str(self.created_ms))
        identity = "\n".join(fields)
        return hashlib.sha256(identity.encode()).hexdigest()[:20]


def parse_registry_uri(model_uri: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) of `models:/<name>@<alias>` or `models:/<name>/<version>`; None
    for any other URI (a logged model's id, `runs:/`, a path)."""
    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/").strip("/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return (name, alias, None) if name and alias else None
    if "/" in ref:
        name, version = ref.split("/", 1)
        return (name, None, version) if name and version.isdigit() else None
    return None


def find_version(model_uri: str, store_uri: str) -> RegisteredVersion | None:
    """The version `model_uri` names in the store at `store_uri` (already resolved), asked
    without MLflow; None when that cannot be done or did not work."""
    parsed = parse_registry_uri(model_uri)
    if parsed is None:
        return None
    try:
        db = sqlite_path(store_uri)
        if db is not None:
            return _sqlite_version(db, *parsed)
        if store_uri.startswith(("http://", "https://")):
            return _rest_version(store_uri, *parsed)
    except (OSError, sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    return None


def _sqlite_version(
    db: Path, name: str, alias: str | None, version: str | None
) -> RegisteredVersion | None:
    if not db.is_file():
        return None
    with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
        if alias is not None:
            rows = con.execute(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                (name, alias),
            ).fetchall()
            if len(rows) != 1:  # none (MLflow says why), or one per workspace
                return None
            version = str(rows[0][0])
        rows = con.execute(
            "SELECT version, source, storage_location, run_id, creation_time FROM model_versions"
            " WHERE name = ? AND version = ? AND current_stage != ? AND status = 'READY'",
            (name, int(version), _DELETED_STAGE),
        ).fetchall()
    if len(rows) != 1:
        return None
    number, source, storage, run_id, created = rows[0]
    return RegisteredVersion(name, str(number), storage or source, run_id or "", int(created))


def _rest_version(
    store_uri: str, name: str, alias: str | None, version: str | None
) -> RegisteredVersion | None:
    if alias is not None:
        path, query = "registered-models/alias", {"name": name, "alias": alias}
    else:
        path, query = "model-versions/get", {"name": name, "version": version}
    url = f"{store_uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers=_auth_headers())
    with urllib.request.urlopen(request, timeout=_LOOKUP_TIMEOUT_S) as response:
        found = json.loads(response.read())["model_version"]
    if found.get("status", "READY") != "READY":
        return None
    return RegisteredVersion(
        found["name"],
        str(found["version"]),
        found.get("storage_location") or found["source"],
        found.get("run_id", ""),
        int(found.get("creation_timestamp", 0)),
    )


def _auth_headers() -> dict[str, str]:
    """MLflow's credentials from the environment (basic auth or a token), as its client
    sends them; TLS settings other than the system's are MLflow's full path."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


def default_cache_root() -> Path:
    """newsdesk's per-machine cache folder (as the tokenization cache): models/ under it."""
    base = os.environ.get("NEWSDESK_CACHE") or Path.home() / ".cache" / "newsdesk"
    return Path(base) / "models"


def local_model_folder(
    version: RegisteredVersion, store_uri: str, cache_root: Path | None = None
) -> Path | None:
    """The version's files on this machine: where the store keeps them when that is a local
    path, else its folder in the cache once it was downloaded."""
    if version.source.startswith("file://"):
        folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(version.source).path))
        return folder if (folder / "MLmodel").is_file() else None
    cached = cache_folder(version, store_uri, cache_root)
    if not (cached / "MLmodel").is_file():
        return None
    with contextlib.suppress(OSError):
        os.utime(cached)  # used now: the last to be pruned
    return cached


def cache_folder(
    version: RegisteredVersion, store_uri: str, cache_root: Path | None = None
) -> Path:
    root = cache_root if cache_root is not None else default_cache_root()
    return root / version.cache_key(store_uri)


def fill_cache(folder: Path, download: Callable[[Path], Path]) -> Path:
    """Download a version's files into `folder`: `download(tmp)` fills a temporary folder
    beside it, which is then renamed into place, so that a reader never sees half a model and
    two processes downloading at once both end with one whole copy."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        downloaded = download(tmp)
        try:
            os.rename(downloaded, folder)
        except OSError:
            if not (folder / "MLmodel").is_file():
                raise  # not another process's finished copy: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(folder.parent, keep=CACHE_KEEP)
    return folder


def _prune(root: Path, keep: int) -> None:
    """Remove all but the `keep` most recently filled versions (a promoted model replaces
    the one before; the cache should not grow with every promotion)."""
    entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)


class TextModel:
    """A newsdesk text model loaded from its folder: `predict` takes a frame with a `text`
    column (or any single column), a list or a string, as the pyfunc model does."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def predict(self, model_input: Any) -> Any:
        return self.predictor.predict_frame(texts_of(model_input))


def load_text_model(folder: Path) -> TextModel | None:
    """The model in `folder` when newsdesk logged it (see the module docstring), else None."""
    import yaml  # MLflow's own dependency, and its format for MLmodel

    try:
        spec = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
        flavor = spec["flavors"]["python_function"]
        if flavor.get("loader_module") != _CODE_MODEL_LOADER:
            return None
        loader = flavor["config"][_LOADER_KEY]
        checkpoint = folder / flavor["artifacts"][_CHECKPOINT_KEY]["path"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    module_name, _, function = str(loader).partition(":")
    if not checkpoint.is_file() or not _importable(module_name, folder / "code"):
        return None
    module = importlib.import_module(module_name)
    return TextModel(getattr(module, function)(str(checkpoint)))


def _importable(module_name: str, code: Path) -> bool:
    """Whether the loader's module imports: from this environment, else (as the model's own
    wrapper does) from the code archive the model carries."""
    if importlib.util.find_spec(module_name.split(".")[0]) is not None:
        return True
    archive = code / _CODE_ARCHIVE
    if not archive.is_file():
        return False
    sys.path.insert(0, str(archive))
    return importlib.util.find_spec(module_name.split(".")[0]) is not None
