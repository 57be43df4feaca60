"""Loopback ports for the processes bordermon starts: the demo's, and the tests' and bench's."""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now and that this process has not handed out before.

    The kernel may give the same port to two binds in a row once the first socket is closed, so
    without the record one Kafka node got one port for two listeners (a CI run on 2026-12-05:
    "two listeners on the same port ... INTERNAL://127.0.0.1:40707, CONTROLLER://127.0.0.1:40707")."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no loopback port left that was not handed out already ({len(_handed_out)} were)")


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens on it and it was not handed out, else a `free_port`."""
    if preferred not in _handed_out:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
            except OSError:
                pass
            else:
                _handed_out.add(preferred)
                return preferred
    return free_port()
