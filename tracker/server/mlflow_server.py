"""A real `mlflow server` process: the command line, start, health wait, kill and restart.

`newsdesk server` runs one in the foreground; the tests and benchmarks start, SIGKILL and
restart them. The server binds to 127.0.0.1 unless a host is given explicitly, and serves
artifacts itself (`--serve-artifacts`), so clients need no access to the artifact folder.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tracker.server.ports import free_port

AUTH_ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
BACKEND_STORE_ENV = "MLFLOW_BACKEND_STORE_URI"
# MLflow 3 starts a job runner (a huey consumer per job kind, each a full Python process) with
# every server; newsdesk submits no jobs, so its servers run without it unless the user's
# environment asks for it.
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


class ServerError(RuntimeError):
    """The tracking server would not start; the message says why in one line."""


@dataclass(frozen=True)
class ServerConfig:
    backend_store_uri: str
    artifacts_destination: Path
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    auth: bool = False
    # Where the basic-auth app keeps its users (a SQLite file); with `auth` only.
    auth_database: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _mlflow_executable() -> str:
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else "mlflow"


def mlflow_command(subcommand: str, host: str, port: int, workers: int) -> list[str]:
    """`mlflow server` or `mlflow ui` bound to `host:port`, with `workers` server processes."""
    return [
        _mlflow_executable(),
        subcommand,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_command(config: ServerConfig) -> list[str]:
    """The command line; the backend store URI is not on it (see `server_environment`)."""
    command = [
        *mlflow_command("server", config.host, config.port, config.workers),
        "--serve-artifacts",
        "--artifacts-destination",
        str(Path(config.artifacts_destination).resolve()),
    ]
    if config.auth:
        command += ["--app-name", "basic-auth"]
    return command


def _secret_key(path: Path) -> str:
    """The CSRF secret of the auth app: generated once, kept (0600) so restarts agree."""
    if not path.is_file():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def write_auth_config(database: Path, target: Path) -> Path:
    """The basic-auth app's ini: users in `database`; new users may read, not write."""
    database = database.resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{database}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    return target


def server_environment(config: ServerConfig) -> dict[str, str]:
    """The server's environment. The backend store URI travels here, read by `mlflow server`
    as MLFLOW_BACKEND_STORE_URI: on the command line its password would be visible to every
    user of the machine in `ps`."""
    env = {**os.environ, **config.extra_env}
    env[BACKEND_STORE_ENV] = config.backend_store_uri
    env.setdefault(JOB_EXECUTION_ENV, "false")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if config.auth:
        if not env.get(AUTH_ADMIN_PASSWORD_ENV):
            raise ServerError(
                f"--auth needs the admin password in ${AUTH_ADMIN_PASSWORD_ENV} "
                "(used once, when the user database is created)"
            )
        database = config.auth_database or Path(config.artifacts_destination).parent / "auth.db"
        ini = write_auth_config(database, database.with_suffix(".ini"))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
        if not env.get(SECRET_KEY_ENV):
            env[SECRET_KEY_ENV] = _secret_key(database.with_suffix(".secret"))
    return env


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll `/health` until the server answers; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (an auth app may refuse even /health)
        except OSError as exc:
            if proc is not None and proc.poll() is not None:
                msg = f"mlflow server exited with code {proc.returncode} at start"
                raise ServerError(msg) from None
            if time.monotonic() > deadline:
                msg = f"mlflow server at {url} not healthy after {timeout:.0f}s: {exc}"
                raise ServerError(msg) from None
            time.sleep(0.25)


# How long a stopping server may take before its process group is killed. Seen once in CI:
# a server that had not stopped 30 s after SIGTERM, which made `newsdesk server` take over a
# minute to stop. Every request the server acknowledged is already in its database, so
# nothing is lost by not waiting longer.
STOP_GRACE_S = 10.0


class TrackingServer:
    """A background `mlflow server`; `kill()` is SIGKILL, `start()` again restarts it."""

    def __init__(self, config: ServerConfig, log_path: Path | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @classmethod
    def on_free_port(cls, backend_store_uri: str, artifacts: Path, **kwargs) -> TrackingServer:
        config = ServerConfig(backend_store_uri, artifacts, port=free_port(), **kwargs)
        return cls(config, log_path=Path(artifacts).parent / "server.log")

    @property
    def url(self) -> str:
        return self.config.url

    def start(self, timeout: float = 120.0) -> TrackingServer:
        env = server_environment(self.config)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Without a log file the server writes to our own stdout/stderr (the foreground command).
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                server_command(self.config),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # the whole process group is killed together
            )
        finally:
            if out is not None:
                out.close()
        wait_healthy(self.url, self.proc, timeout)
        return self

    def kill(self) -> None:
        """SIGKILL the server and its workers, as a crash would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
