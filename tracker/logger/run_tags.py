"""Tags every run gets without the user asking: where and with what the run was made."""

from __future__ import annotations

import getpass
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

GIT_COMMIT_TAG = "mlflow.source.git.commit"
# MLflow's standard source tags: the UI shows them as the run's "Source" and "User".
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
USER_TAG = "mlflow.user"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(cwd: Path | None = None) -> str | None:
    """The HEAD commit when running inside a git checkout, else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def system_tags(cwd: Path | None = None) -> dict[str, str]:
    """Versions, host and commit: enough to say later which code and stack made a run.

    Versions are read from package metadata so that the tracker never imports torch.
    """
    tags = {
        "python_version": platform.python_version(),
        "host": socket.gethostname(),
    }
    for package in ("torch", "mlflow"):
        version = _version(package)
        if version:
            tags[f"{package}_version"] = version
    commit = git_commit(cwd)
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    tags.update(source_tags())
    return tags


def source_tags() -> dict[str, str]:
    """What MLflow's fluent API records and its UI shows: the program that made the run (the
    script, or the `newsdesk` command), LOCAL, and the user."""
    tags = {SOURCE_TYPE_TAG: "LOCAL"}
    program = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if program:
        tags[SOURCE_NAME_TAG] = program
    try:
        tags[USER_TAG] = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        pass
    return tags
