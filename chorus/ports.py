"""A free TCP port on loopback, for the processes we start ourselves (embedded stack, tests, benchmarks)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picks it); whoever binds it next gets it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
