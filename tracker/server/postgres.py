"""A private PostgreSQL cluster on 127.0.0.1: for `make server`, the tests and the benchmarks.

It runs Debian's PostgreSQL binaries on a folder of its own, listening on loopback only and
with no Unix socket, with a generated password (SCRAM). PostgreSQL refuses to run as root, so
when this process is root the cluster runs as the unprivileged `postgres` user (or `nobody`),
which owns the folder. `stop()` and `start()` can be called again: tests restart the
database under a running tracking server.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tracker.server.ports import free_port

CONNECTION_FILE = "newsdesk-connection.txt"


class PostgresError(RuntimeError):
    """PostgreSQL is missing or would not start; the message says what to do."""


def postgres_bindir() -> Path:
    """Where `initdb` and `postgres` live (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise PostgresError(
            "PostgreSQL is not installed (initdb not found); install it with "
            "'apt-get install -y postgresql'"
        )
    return Path(candidates[0]).parent


def _run_as() -> str | None:
    """The user the cluster runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresError("running as root and no unprivileged user (postgres, nobody) exists")


@dataclass(frozen=True)
class PostgresConfig:
    directory: Path | None = None  # None: a fresh temporary folder, removed by `destroy()`
    port: int | None = None  # None: a free loopback port (kept across restarts)
    durable: bool = True  # False turns fsync off: tests need speed, not crash safety
    user: str = "newsdesk"


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner alone from the first byte: created 0600 (chmod
    after writing would leave a window in which anyone may read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)  # an older file of that name keeps its mode otherwise
        fh.write(text)


class LocalPostgres:
    """One PostgreSQL cluster in a folder; created on first `start()`, reused after."""

    def __init__(self, config: PostgresConfig | None = None) -> None:
        self.config = config or PostgresConfig()
        self._owned_dir = self.config.directory is None
        root = self.config.directory or Path(tempfile.mkdtemp(prefix="newsdesk-pg-"))
        self.root = Path(root).resolve()
        self.datadir = self.root / "data"
        self.os_user = _run_as()
        self.bindir = postgres_bindir()
        self.port = self.config.port or free_port()
        self._proc: subprocess.Popen | None = None
        self.log_path = self.root / "postgres.log"

    # ----- lifecycle --------------------------------------------------------------------------
    @property
    def password(self) -> str:
        return (self.root / CONNECTION_FILE).read_text(encoding="utf-8").strip()

    def uri(self, database: str) -> str:
        return f"postgresql://{self.config.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        secret = self.root / CONNECTION_FILE
        _write_private(secret, secrets.token_urlsafe(18))
        pwfile = self.root / ".pwfile"
        _write_private(pwfile, self.password)
        self._give_to_os_user(self.root)
        try:
            self._call(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.config.user,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _give_to_os_user(self, path: Path) -> None:
        if self.os_user is None:
            return
        entry = pwd.getpwnam(self.os_user)
        for folder, _, files in os.walk(path):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            for name in files:
                if name != CONNECTION_FILE:
                    os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
        # The server must be able to reach its folder through the parents.
        for parent in path.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise PostgresError(
                    f"{parent} is not searchable by {self.os_user}; put the cluster elsewhere"
                )

    def _call(self, command: list[str]) -> None:
        done = subprocess.run(
            command, user=self.os_user, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            raise PostgresError(f"{Path(command[0]).name} failed: {last[0]}")

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        if self._proc is not None and self._proc.poll() is None:
            return self
        if not (self.datadir / "PG_VERSION").is_file():
            self._initdb()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
        }
        if not self.config.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        command = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._proc = subprocess.Popen(
                command,
                user=self.os_user,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.uri("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if self._proc is not None and self._proc.poll() is not None:
                    tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:]
                    raise PostgresError(f"PostgreSQL exited at start: {tail}") from exc
                if time.monotonic() > deadline:
                    raise PostgresError(f"PostgreSQL did not accept connections: {exc}") from exc
                time.sleep(0.2)

    def stop(self, *, fast: bool = True, timeout: float = 30.0) -> None:
        """Shut the server down (SIGINT: PostgreSQL's fast shutdown) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT if fast else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def destroy(self) -> None:
        """Stop, and remove the folder when this object made it."""
        self.stop()
        if self._owned_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    # ----- databases --------------------------------------------------------------------------
    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (optionally copied from `template`); returns its URI."""
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(self.uri("postgres"), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                    if template:
                        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                    cur.execute(statement)
        finally:
            conn.close()
        return self.uri(name)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
