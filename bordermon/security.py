"""Kafka client security (TLS, SASL PLAIN / SCRAM) from the environment, for every client.

kafka-python clients (admin, producers, the state reader, the recorder) take `client_options()`;
the Faust worker takes `faust_credentials()`. Passwords come from the environment or a file,
never from the config file, and `bordermon config` never prints them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bordermon.errors import BordermonError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def describe(self) -> str:
        who = f" as {self.username} ({self.mechanism})" if self.uses_sasl else ""
        return f"{self.protocol}{who}"


def from_env(env: Mapping[str, str] | None = None) -> KafkaSecurity:
    """Read once, by `bordermon.config.resolve`; everything else takes `Settings.security`."""
    env = dict(os.environ if env is None else env)
    protocol = (env.get("BORDERMON_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise BordermonError(f"BORDERMON_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {protocol}")
    password = env.get("BORDERMON_KAFKA_SASL_PASSWORD")
    password_file = env.get("BORDERMON_KAFKA_SASL_PASSWORD_FILE")
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as handle:
                password = handle.read().strip()
        except OSError as exc:
            raise BordermonError(f"BORDERMON_KAFKA_SASL_PASSWORD_FILE {password_file}: {exc.strerror}") from None
    security = KafkaSecurity(
        protocol=protocol,
        mechanism=(
            env.get("BORDERMON_KAFKA_SASL_MECHANISM") or ("SCRAM-SHA-512" if protocol.startswith("SASL") else "")
        ).upper()
        or None,
        username=env.get("BORDERMON_KAFKA_SASL_USERNAME") or None,
        password=password or None,
        cafile=env.get("BORDERMON_KAFKA_SSL_CAFILE") or None,
        certfile=env.get("BORDERMON_KAFKA_SSL_CERTFILE") or None,
        keyfile=env.get("BORDERMON_KAFKA_SSL_KEYFILE") or None,
    )
    if security.uses_sasl:
        if security.mechanism not in MECHANISMS:
            raise BordermonError(f"BORDERMON_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}")
        if not security.username or not security.password:
            raise BordermonError(
                f"{protocol} needs BORDERMON_KAFKA_SASL_USERNAME and BORDERMON_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)"
            )
    for name in ("cafile", "certfile", "keyfile"):
        path = getattr(security, name)
        if path and not os.path.isfile(path):
            raise BordermonError(f"BORDERMON_KAFKA_SSL_{name.upper()} {path}: no such file")
    return security


def security_env(security: KafkaSecurity) -> dict[str, str]:
    """The environment that gives a child process the same security (passwords included: a
    child is this user's own process)."""
    out = {"BORDERMON_KAFKA_SECURITY_PROTOCOL": security.protocol}
    for name, value in (
        ("SASL_MECHANISM", security.mechanism),
        ("SASL_USERNAME", security.username),
        ("SASL_PASSWORD", security.password),
        ("SSL_CAFILE", security.cafile),
        ("SSL_CERTFILE", security.certfile),
        ("SSL_KEYFILE", security.keyfile),
    ):
        if value:
            out[f"BORDERMON_KAFKA_{name}"] = value
    return out


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    if not security.uses_tls:
        return None
    context = ssl.create_default_context(cafile=security.cafile)
    if security.certfile:
        context.load_cert_chain(security.certfile, security.keyfile)
    return context


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients and aiokafka's producer (the names are the same)."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_sasl:
        options.update(
            sasl_mechanism=security.mechanism,
            sasl_plain_username=security.username,
            sasl_plain_password=security.password,
        )
    if security.uses_tls:
        options["ssl_context"] = ssl_context(security)
    return options


def faust_credentials(security: KafkaSecurity) -> Any:
    """`broker_credentials` for faust.App, or None for PLAINTEXT."""
    import faust

    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.mechanism,
            ssl_context=ssl_context(security),
        )
    if security.uses_tls:
        return faust.SSLCredentials(ssl_context(security))
    return None
