"""Why a broker refused a client, in one line.

kafka-python retries a failed bootstrap until its timeout and then raises only "Unable to
bootstrap"; the reason (a refused login, an untrusted certificate, a plaintext client on a TLS
listener) is only in what it logged meanwhile. `client_errors` keeps those lines while a client
starts and `reason` turns them into what the operator must change.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bordermon.security import KafkaSecurity


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def client_errors() -> Iterator[list[str]]:
    """The error lines kafka-python logs inside the block (kept, not printed)."""
    logger = logging.getLogger("kafka")
    keep = _Keep()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(keep)
    logger.setLevel(min(level or logging.ERROR, logging.ERROR))
    logger.propagate = False
    try:
        yield keep.lines
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
        logger.propagate = propagate


def speaks_tls(server: str, timeout: float = 3.0) -> bool:
    """Whether `host:port` completes a TLS handshake (any certificate)."""
    host, _, port = server.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw, context.wrap_socket(raw):
            return True
    except (OSError, ValueError):
        return False


# A connection that got as far as ApiVersions (its broker version is known) and was then dropped:
# during a SASL login, what Kafka does right after refusing it. The refusal's own response is
# read only if it arrives before the close; kafka-python often sees the close first, and on
# some runs on every retry (test_locks: 1 of 3 runs, none naming the refusal).
_DROPPED_AFTER_HELLO = re.compile(
    r"broker_version=\(\d+, \d+\) \(disconnected\)>: Connection lost: [^\n]*socket disconnected"
)


def reason(security: KafkaSecurity, errors: Sequence[str], servers: Sequence[str]) -> str | None:
    """What the broker refused, from a failed client's error lines; None when nothing says."""
    text = "\n".join(errors)
    if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
        return (
            f"the broker refused the login of {security.username} with {security.mechanism} (an unknown user or a "
            "wrong password: Kafka does not say which); check BORDERMON_KAFKA_SASL_USERNAME and the password"
        )
    if security.uses_sasl and _DROPPED_AFTER_HELLO.search(text):
        return (
            f"the broker refused the login of {security.username} with {security.mechanism}: it closed the "
            "connection during the login, as Kafka does after refusing one (an unknown user, a wrong password or a "
            "mechanism this listener does not enable); check BORDERMON_KAFKA_SASL_USERNAME, the password and "
            "BORDERMON_KAFKA_SASL_MECHANISM"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        return (
            f"the broker's TLS certificate is not trusted ({detail}); BORDERMON_KAFKA_SSL_CAFILE must name the CA "
            "that signed it"
        )
    if "UnsupportedSaslMechanism" in text:
        return f"the broker does not offer {security.mechanism}; set BORDERMON_KAFKA_SASL_MECHANISM to one it enables"
    if not security.uses_tls and servers and speaks_tls(servers[0]):
        return (
            f"{servers[0]} is a TLS listener but BORDERMON_KAFKA_SECURITY_PROTOCOL is {security.protocol}; "
            "set SSL or SASL_SSL and BORDERMON_KAFKA_SSL_CAFILE"
        )
    return None
