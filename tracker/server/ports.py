"""Loopback ports for the servers newsdesk starts."""

from __future__ import annotations

import errno
import socket


class PortInUse(OSError):
    """A server's port is taken; the message names it and says what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"port {port} on {host} is in use (another newsdesk ui or mlflow server?); "
            "stop it, or choose another port with --port"
        ) from None
    return sock


def require_free_port(host: str, port: int) -> None:
    """Bind the port for a moment: taken, it is `PortInUse` before anything starts."""
    _bound(host, port).close()


def bind_port(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` for a server that runs in this process; a taken port
    is `PortInUse` (binding it here, rather than checking first, leaves no moment for another
    process to take it)."""
    sock = _bound(host, port)
    sock.listen(128)
    return sock
