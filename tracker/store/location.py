"""Where runs go: the tracking URI and the artifact root.

With no URI given and no MLFLOW_TRACKING_URI set, newsdesk uses an embedded store in the
working directory: `mlruns/mlflow.db` (SQLite) with artifacts in `mlruns/artifacts/`. SQLite
gives the registry and fast bulk queries that the plain file store lacks, with no server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_STORE_DIR = Path("mlruns")
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"


@dataclass(frozen=True)
class StoreLocation:
    """A resolved store: the tracking URI and, for SQLite stores, where artifacts live."""

    tracking_uri: str
    artifact_root: str | None

    @property
    def is_sqlite(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, or None for other schemes."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix) :])


def resolve_store(
    tracking_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    create: bool = True,
) -> StoreLocation:
    """Pick the store: explicit argument, then MLFLOW_TRACKING_URI, then the embedded default.

    For SQLite stores the artifact root is the folder `artifacts/` beside the database file, as
    an absolute `file://` URI, and (unless `create` is False) the database folder is created
    so a fresh clone just works.
    """
    env = os.environ if environ is None else environ
    uri = tracking_uri or env.get(ENV_TRACKING_URI) or DEFAULT_TRACKING_URI
    db = sqlite_path(uri)
    if db is None:
        return StoreLocation(tracking_uri=uri, artifact_root=None)
    db = db if db.is_absolute() else Path.cwd() / db
    if create:
        db.parent.mkdir(parents=True, exist_ok=True)
    return StoreLocation(
        tracking_uri=f"sqlite:///{db}",
        artifact_root=(db.parent / "artifacts").resolve().as_uri(),
    )


class StoreNotFound(ValueError):
    """A command that only reads was pointed at an embedded store that does not exist."""


def existing_store(
    tracking_uri: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The tracking URI for a command that only reads (compare, predict, promote): resolved as
    `resolve_store` does, but an embedded store that does not exist is an error naming where
    it was looked for, instead of an empty database (and folder) made in the working
    directory."""
    env = os.environ if environ is None else environ
    uri = resolve_store(tracking_uri, env, create=False).tracking_uri
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        given = (
            "--tracking-uri"
            if tracking_uri
            else (ENV_TRACKING_URI if env.get(ENV_TRACKING_URI) else "the default store")
        )
        raise StoreNotFound(
            f"no MLflow store at {db} ({given}): nothing was trained into it; run this from "
            f"the folder you trained in, or point --tracking-uri (or {ENV_TRACKING_URI}) at "
            "the store"
        )
    return uri


def nearest_store(start: Path | None = None) -> str | None:
    """The embedded store `mlruns/mlflow.db` in `start` (default: the working directory) or
    the nearest folder above it, as a tracking URI; None when there is none. For a notebook,
    which Jupyter runs in its own folder (`notebooks/`), below the project's store."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        db = candidate / DEFAULT_STORE_DIR / "mlflow.db"
        if db.is_file():
            return f"sqlite:///{db}"
    return None


def default_spool_dir(location: StoreLocation) -> Path:
    """Spool files sit beside a SQLite database, else under ./mlruns/spool."""
    db = sqlite_path(location.tracking_uri)
    base = db.parent if db is not None else DEFAULT_STORE_DIR
    return base / "spool"


def default_checkpoint_dir(location: StoreLocation) -> Path:
    """Resume checkpoints sit beside a SQLite database, else under ./mlruns/checkpoints."""
    db = sqlite_path(location.tracking_uri)
    base = db.parent if db is not None else DEFAULT_STORE_DIR
    return (base / "checkpoints").resolve()


def without_credentials(uri: str) -> str:
    """A server's address with no user or password in it: to link to from a page."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def redact(uri: str) -> str:
    """`uri` with its password replaced by `***`, for printing and logging."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
