"""A `runs/create` whose response is lost: MLflow's HTTP client sends the POST again, the
server creates a second run, and the first stayed RUNNING forever. Each run now carries a
client-generated key, and the logger keeps exactly one run per key."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest
from mlflow.tracking import MlflowClient

from tracker import TrainingLogger, schema

pytestmark = pytest.mark.server


class DropFirstCreateResponse:
    """A loopback HTTP proxy to `upstream` that forwards every request and swallows the first
    `drop` responses of `POST .../runs/create`, closing the connection, as a proxy in trouble
    does."""

    def __init__(self, upstream_port: int, drop: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drop = drop  # how many create responses to swallow
        self.dropped = 0
        self.creates = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn:
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers = {}
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = line.decode().partition(":")
                    headers[key.strip()] = value.strip()
                body = reader.read(int(headers.get("Content-Length", 0) or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
                forwarded = {k: v for k, v in headers.items() if k.lower() != "connection"}
                upstream.request(method, path, body=body, headers=forwarded)
                response = upstream.getresponse()
                payload = response.read()
                if method == "POST" and path.endswith("/runs/create"):
                    self.creates += 1
                    if self.dropped < self.drop:
                        self.dropped += 1
                        upstream.close()
                        return  # the run was created upstream; the client never hears of it
                head = [f"HTTP/1.1 {response.status} {response.reason}"]
                head += [
                    f"{k}: {v}"
                    for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                ]
                head += [f"Content-Length: {len(payload)}", "Connection: keep-alive"]
                conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                upstream.close()

    def close(self) -> None:
        self._server.close()


def test_a_lost_create_response_leaves_one_run(pg_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    proxy = DropFirstCreateResponse(pg_server.config.port)
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        with TrainingLogger("lost-response", tracking_uri=url) as log:
            log.log_metrics({"train/loss": 1.0}, step=1)
    finally:
        proxy.close()
    print(f"runs/create sent {proxy.creates} times, {proxy.dropped} response dropped")
    assert proxy.dropped == 1 and proxy.creates >= 2  # the retry really happened
    client = MlflowClient(tracking_uri=pg_server.config.url)
    experiment = client.get_experiment_by_name("lost-response")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [log.run_id]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.tags[schema.RUN_KEY_TAG]


def test_every_create_response_lost_leaves_no_run_running(pg_server, monkeypatch):
    """Issue 34, item 9: with every `runs/create` response lost, the client gave up with an
    error and the server kept each retry's run RUNNING forever. The run key finds them."""
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    proxy = DropFirstCreateResponse(pg_server.config.port, drop=10**6)
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        with pytest.raises(MlflowException):
            TrainingLogger("all-lost", tracking_uri=url)
    finally:
        proxy.close()
    assert proxy.creates >= 2, "the client retried"
    client = MlflowClient(tracking_uri=pg_server.config.url)
    experiment = client.get_experiment_by_name("all-lost")
    assert client.search_runs([experiment.experiment_id]) == []  # none left active
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert len(deleted) == proxy.creates
    assert {r.info.status for r in deleted} == {"KILLED"}
