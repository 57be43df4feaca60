"""Who may read the worker's HTTP port: TLS and basic auth, as Prometheus's own exporters offer them.

`BORDERMON_WEB_CONFIG` names a YAML file in the exporter toolkit's `--web.config.file` format
(the subset that applies), so the same file and the same Prometheus scrape settings serve both:

    tls_server_config:
      cert_file: /etc/bordermon/web.crt
      key_file: /etc/bordermon/web.key
    basic_auth_users:
      prometheus: $2b$12$...        # a bcrypt hash: htpasswd -nBC 12 prometheus

Without the file the port is plain HTTP and open, bound to 127.0.0.1 by default.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from dataclasses import dataclass, field

import bcrypt
import yaml

from bordermon.errors import BordermonError

KNOWN = {"tls_server_config", "basic_auth_users"}


@dataclass(frozen=True)
class WebConfig:
    cert_file: str | None = None
    key_file: str | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.cert_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise BordermonError(f"web config: cannot load {self.cert_file} / {self.key_file}: {exc}") from None
        return context

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header opens the port (always, without users)."""
        if not self.users:
            return True
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            name, _, password = base64.b64decode(authorization[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(name)
        # A name that is not known still costs a bcrypt check: the time does not tell names apart.
        probe = hashed if hashed is not None else _DUMMY
        try:
            ok = bcrypt.checkpw(password.encode("utf-8"), probe)
        except ValueError:
            return False
        return ok and hashed is not None


_DUMMY = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=4))


def load_web_config(path: str | None) -> WebConfig:
    """The file's settings, or an open port without one; a bad file is one line."""
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise BordermonError(f"web config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise BordermonError(f"web config {path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or set(data) - KNOWN:
        extra = sorted(set(data) - KNOWN) if isinstance(data, dict) else "not a mapping"
        raise BordermonError(f"web config {path}: unknown key(s) {extra}; known: {', '.join(sorted(KNOWN))}")
    tls = data.get("tls_server_config") or {}
    if tls and not (tls.get("cert_file") and tls.get("key_file")):
        raise BordermonError(f"web config {path}: tls_server_config needs cert_file and key_file")
    users = data.get("basic_auth_users") or {}
    hashes: dict[str, bytes] = {}
    for name, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise BordermonError(f"web config {path}: the password of {name!r} must be a bcrypt hash ($2b$...)")
        hashes[str(name)] = hashed.encode("ascii")
    config = WebConfig(tls.get("cert_file"), tls.get("key_file"), hashes)
    config.ssl_context()  # a certificate that does not load is refused now, in one line
    return config
