"""Tags every run gets without the user asking: where and with what the run was made."""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

GIT_COMMIT_TAG = "mlflow.source.git.commit"


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
    return tags
