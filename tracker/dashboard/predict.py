"""Predicting with a registered (or any) MLflow model on raw headlines.

MLflow is imported only where it is used: `load_for_prediction` finds and loads a newsdesk
model without it when it can (`tracker.dashboard.model_files`), so `newsdesk predict` from
the shell pays for the model, not for MLflow's start-up.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.dashboard import model_files
from tracker.dashboard.model_names import CHAMPION, default_model_name
from tracker.store.location import existing_store

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

PROB_PREFIX = "prob_"


def default_model_uri(experiment: str) -> str:
    return f"models:/{default_model_name(experiment)}@{CHAMPION}"


def model_location(client: MlflowClient, model_uri: str) -> str:
    """Where the files of `model_uri` are, asked of `client`'s store and registry.

    `models:/<name>@<alias>`, `models:/<name>/<version>` and `models:/<model_id>` are resolved
    here with the explicit client: MLflow's own resolution of `models:/` URIs reads the
    process-wide registry URI. Other URIs (`runs:/…`, a path) are returned as they are.
    """
    if not model_uri.startswith("models:/"):
        return model_uri
    ref = model_uri.removeprefix("models:/").strip("/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
        return client.get_model_version_download_uri(name, version)
    if "/" in ref:
        name, version = ref.split("/", 1)
        return client.get_model_version_download_uri(name, version)
    return client.get_logged_model(ref).artifact_location


def load_model(model_uri: str, tracking_uri: str | None = None, *, check_requirements: bool = True):
    """Load a pyfunc model; a URI that does not resolve is a ValueError naming it.

    The model is found in the given store explicitly, downloaded to a temporary folder and
    loaded from there: MLflow's process-wide tracking and registry URIs are never read or
    set. The loaded model holds its weights in memory, so the folder is removed after.

    `check_requirements=False` skips MLflow's comparison of the model's pip requirements with
    the installed packages: it maps every installed distribution to its modules, which takes
    as long as a large prediction, to warn of version differences only.
    """
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="newsdesk-model-") as tmp:
        local = _download(model_uri, tracking_uri, Path(tmp))
        try:
            return mlflow.pyfunc.load_model(str(local), suppress_warnings=not check_requirements)
        except (MlflowException, OSError) as exc:
            message = exc.message if isinstance(exc, MlflowException) else str(exc)
            first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
            raise ValueError(f"model URI {model_uri!r} does not load: {first}") from None


def _download(model_uri: str, tracking_uri: str | None, into: Path) -> Path:
    """The files of `model_uri`, downloaded into the folder `into`; returns the model's folder.
    A URI that does not resolve is a ValueError naming it."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    store = existing_store(tracking_uri)
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    try:
        location = model_location(client, model_uri)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(into), tracking_uri=store
            )
        )
    except (MlflowException, OSError) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise ValueError(f"model URI {model_uri!r} does not resolve: {first}") from None


def load_for_prediction(
    model_uri: str,
    tracking_uri: str | None = None,
    *,
    check_requirements: bool = False,
    cache_root: Path | None = None,
) -> Any:
    """A model to predict with: the fast path of `model_files` for a registered newsdesk model
    (files read in place, or downloaded once into `cache_root`), else `load_model`. Both
    answer `predict(frame)` with the same frame. `check_requirements` (MLflow's check of the
    installed packages) is MLflow's full path only."""
    store = existing_store(tracking_uri)
    version = None if check_requirements else model_files.find_version(model_uri, store)
    if version is None:
        return load_model(model_uri, tracking_uri, check_requirements=check_requirements)
    folder = model_files.local_model_folder(version, store, cache_root)
    if folder is None and not version.source.startswith("file://"):
        target = model_files.cache_folder(version, store, cache_root)
        registered = f"models:/{version.name}/{version.version}"
        folder = model_files.fill_cache(
            target, lambda tmp: _download(registered, tracking_uri, tmp)
        )
    model = model_files.load_text_model(folder) if folder is not None else None
    if model is None:
        return load_model(model_uri, tracking_uri, check_requirements=check_requirements)
    return model


def read_headlines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: bytes that are not UTF-8 at offset {exc.start}") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"{path}: no headlines (the file is empty)")
    return texts


def predict(model, texts: Sequence[str], top_k: int = 1) -> pd.DataFrame:
    """text, label, probability, and `top_k` as 'label:p; label:p' from the model's output."""
    import pandas as pd

    if top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {top_k}")
    out = model.predict(pd.DataFrame({"text": list(texts)}))
    prob_cols = [c for c in out.columns if c.startswith(PROB_PREFIX)]
    frame = pd.DataFrame(
        {"text": list(texts), "label": out["label"], "probability": out["probability"]}
    )
    if prob_cols:
        probs = out[prob_cols].to_numpy()
        names = [c.removeprefix(PROB_PREFIX) for c in prob_cols]
        order = (-probs).argsort(axis=1)[:, :top_k]
        frame["top_k"] = [
            "; ".join(f"{names[j]}:{probs[i, j]:.4f}" for j in row) for i, row in enumerate(order)
        ]
    return frame
