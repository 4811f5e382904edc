"""Uploading a pyfunc model to a run's LoggedModel through an explicit `MlflowClient`.

MLflow's `log_model` files a model under the process's active experiment and global tracking
URI. Here the LoggedModel is created in the run's own experiment, the model is saved to a local
folder by the caller's `save` function, uploaded, and marked READY only once its files are in
place (FAILED when anything goes wrong, so that `promote` never sees a half-uploaded model).
Every model newsdesk logs (its own text models, a Lightning checkpoint) goes through here.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.tracking import MlflowClient


@contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Silence a chatty library logger for the duration of a save."""
    log = logging.getLogger(logger_name)
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def pinned_requirements(packages: tuple[str, ...]) -> list[str]:
    """`package==version` for each installed package of `packages` (read from metadata, so
    nothing is imported)."""
    reqs = []
    for package in packages:
        try:
            reqs.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def _mark_failed(client: MlflowClient, model_id: str) -> None:
    try:
        client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
    except Exception:  # noqa: BLE001 - the store that failed the upload may refuse this too
        logging.getLogger(__name__).warning("could not mark logged model %s FAILED", model_id)


def upload_pyfunc(
    client: MlflowClient,
    run_id: str,
    name: str,
    save: Callable[[Path], None],
    *,
    tags: dict[str, str] | None = None,
) -> str:
    """Create LoggedModel `name` of run `run_id`, let `save(folder)` write the model there,
    upload it and mark it READY; returns `models:/<model_id>`."""
    run = client.get_run(run_id)
    model_tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    model_tags.update(tags or {})
    logged = client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=run_id,
        params=dict(run.data.params),
        tags=model_tags,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            with quiet("mlflow"):
                save(local)
            client.log_model_artifacts(logged.model_id, str(local))
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        _mark_failed(client, logged.model_id)  # never a PENDING model left for `promote`
        raise
    # The run lists the model among its outputs (the run page's "Logged models").
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return f"models:/{logged.model_id}"
