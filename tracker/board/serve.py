"""Serving the dashboard in this process: one uvicorn server on a socket the caller bound,
so `newsdesk ui` is one process that Ctrl-C or SIGTERM stops whole."""

from __future__ import annotations

import socket

from tracker.board.app import BoardConfig, build_app

# Open pages poll every second: a stop does not wait on them longer than this.
GRACEFUL_STOP_S = 2


def serve(config: BoardConfig, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM. uvicorn handles both, finishes the requests under way
    and raises the signal again when it is done, so the caller sees it as it would have."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
        )
    )
    server.run(sockets=[sock])
