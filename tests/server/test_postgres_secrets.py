"""The password of a private PostgreSQL cluster is never readable by other users, not even
for the seconds `initdb` takes (issue 34, item 11)."""

from __future__ import annotations

import shutil
import stat
import tempfile
import threading
from pathlib import Path

from tracker.server.postgres import CONNECTION_FILE, LocalPostgres, PostgresConfig


def test_the_password_files_are_private_from_their_first_byte():
    # Not under pytest's tmp_path: the server's OS user must reach the folder.
    parent = Path(tempfile.mkdtemp(prefix="newsdesk-pg-secrets-"))
    parent.chmod(0o755)
    root = parent / "cluster"
    seen: dict[str, set[int]] = {}
    done = threading.Event()

    def watch() -> None:  # what another user polling the folder would see
        while not done.is_set():
            for name in (CONNECTION_FILE, ".pwfile"):
                try:
                    mode = stat.S_IMODE((root / name).stat().st_mode)
                except FileNotFoundError:
                    continue
                seen.setdefault(name, set()).add(mode)

    watcher = threading.Thread(target=watch)
    watcher.start()
    pg = LocalPostgres(PostgresConfig(directory=root, durable=False))
    try:
        pg.start()
    finally:
        done.set()
        watcher.join()
        pg.destroy()
        shutil.rmtree(parent, ignore_errors=True)
    assert CONNECTION_FILE in seen and ".pwfile" in seen, seen
    assert seen == {CONNECTION_FILE: {0o600}, ".pwfile": {0o600}}
