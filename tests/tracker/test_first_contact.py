"""The first contact with a tracking server is bounded and said in one line (issue 34, item
10): before, nothing listening at the URI gave five minutes of silence and a urllib3 line."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from tracker import TrainingLogger
from tracker.cli import main
from tracker.store.first_contact import StoreUnreachable, check_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_said_in_one_line_within_seconds(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")  # the user's own setting
    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    assert main(["compare", "--tracking-uri", url]) == 1
    waited = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert url in err and "connection refused" in err and "newsdesk server" in err
    assert waited < 15, waited

    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match="connection refused"):
        TrainingLogger("unreachable", tracking_uri=url, spool_dir=tmp_path / "spool")
    assert time.monotonic() - started < 15
    assert not list((tmp_path / "spool").glob("*.wal"))


def test_a_server_that_never_answers_is_given_up_on_in_the_bound(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")  # 8 attempts of 5 s, before
    with socket.socket() as listening:  # accepts connections (the backlog), never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(StoreUnreachable, match="no answer within"):
            check_server(url, within_s=6)
        assert time.monotonic() - started < 12


def test_a_server_answering_500_forever_is_given_up_on_in_the_bound():
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        with pytest.raises(StoreUnreachable, match="HTTP 500"):
            check_server(url, within_s=4)
        assert time.monotonic() - started < 10
    finally:
        server.shutdown()
