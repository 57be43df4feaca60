"""Loopback ports for the processes bordermon starts: the demo's, and the tests' and bench's."""

from __future__ import annotations

import socket

from bordermon.errors import BordermonError

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


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on host:port now (None: it could). The probe allows
    reuse, as the servers do, so a port whose last connection is in TIME_WAIT counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_port_free(host: str, port: int, what: str = "broker") -> None:
    """A one-line error naming `what` when host:port is taken."""
    error = bind_error(host, port)
    if error is not None:
        raise BordermonError(f"cannot start {what}: {host}:{port} is in use ({error.strerror})")


def port_or_free(preferred: int) -> int:
    """`preferred` when a server could listen on it and it was not handed out, else a `free_port`."""
    if preferred not in _handed_out and bind_error("127.0.0.1", preferred) is None:
        _handed_out.add(preferred)
        return preferred
    return free_port()
