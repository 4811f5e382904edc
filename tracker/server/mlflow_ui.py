"""The MLflow UI on an embedded store (`newsdesk ui`), run as a well-behaved foreground process.

`mlflow ui` as MLflow starts it serves with four uvicorn workers beside a job runner, lands on
the GenAI overview, goes on serving from its children when its parent gets SIGTERM, and, on
a port that is taken, says where it would have served and exits 0. Here it runs with one
worker and no job runner, in its own process group (Ctrl-C or SIGTERM stops the whole group),
after a check that the port is free (a taken port is an error naming it), and the address
printed opens the experiment's runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from tracker.server.mlflow_server import (
    JOB_EXECUTION_ENV,
    STOP_GRACE_S,
    mlflow_command,
    wait_healthy,
)
from tracker.server.ports import require_free_port


@dataclass(frozen=True)
class UiConfig:
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def runs_page(base: str, experiment_id: str | None) -> str:
    """The experiment's runs table (the model-training view), or the UI's front page."""
    return f"{base}/#/experiments/{experiment_id}/runs" if experiment_id else base


def ui_command(config: UiConfig) -> list[str]:
    return [
        *mlflow_command("ui", config.host, config.port, config.workers),
        "--backend-store-uri",
        config.tracking_uri,
    ]


class MlflowUi:
    """`mlflow ui` in its own process group: `start` waits until it answers, `stop` ends
    every process of the group (SIGTERM, then SIGKILL after a grace period)."""

    def __init__(self, config: UiConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> MlflowUi:
        require_free_port(self.config.host, self.config.port)
        env = {**os.environ}
        env.setdefault(JOB_EXECUTION_ENV, "false")  # the UI's jobs are none of newsdesk's
        # The server's own log goes to stderr: stdout carries the one line with the address.
        self.proc = subprocess.Popen(
            ui_command(self.config),
            env=env,
            stdout=sys.stderr.fileno(),
            start_new_session=True,
        )
        wait_healthy(self.config.url, self.proc, timeout)
        return self

    def wait(self) -> int:
        return self.proc.wait() if self.proc is not None else 0

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        # Workers outlive their parent when it exits first: the group goes, whatever is left.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
