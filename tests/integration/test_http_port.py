"""The worker's HTTP port serves its three documented endpoints and nothing else: every other path,
method and malformed request gets a plain 4xx, no traceback reaches the log, and the worker keeps
processing. With a web config (Prometheus's --web.config.file format) it speaks TLS and wants a
basic-auth user."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest

from harness.metrics import consumed, parse_metrics
from harness.processes import Worker, base_env, run_cli, wait_until
from tests.fixtures.mixedlog import mixed_log, write_log

pytestmark = pytest.mark.integration

DOCUMENTED = {"/metrics": 200, "/healthz": 200, "/readyz": 200, "/api/v1/waits": 200}
NOT_SERVED = [
    "/", "/router/", "/router/bordermon-state/", "/table/", "/table/state/", "/table/state/syrym/",
    "/graph/", "/stats/", "/performance/", "/metrics/", "/metricsx", "/healthz/extra", "/api/v1/nothing",
    "/%2e%2e/%2e%2e/etc/passwd", "/%ff%fe", "/favicon.ico", "/" + "a" * 4000,
]  # fmt: skip


def request(port: int, method: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw(port: int, data: bytes) -> bytes:
    """Send bytes as they are; the first line of the answer (empty if the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return b""
    return answer.split(b"\r\n", 1)[0]


def status_of(line: bytes) -> int:
    return int(line.split()[1]) if line.startswith(b"HTTP/1.") else 0


def test_only_the_documented_endpoints_answer_and_nothing_breaks_the_worker(broker, tmp_path):
    env = base_env(broker)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        for path, code in DOCUMENTED.items():
            assert request(worker.port, "GET", path)[0] == code, path
        for path in NOT_SERVED:
            status, body = request(worker.port, "GET", path)
            assert status == 404, (path, status, body[:200])
            assert b"Traceback" not in body
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for path in DOCUMENTED:
                assert request(worker.port, method, path)[0] == 405, (method, path)
        assert request(worker.port, "OPTIONS", "/metrics")[0] in (404, 405)
        assert request(worker.port, "HEAD", "/healthz")[0] == 200  # HEAD of a GET page, as HTTP has it

        many_headers = b"".join(b"X-%d: 1\r\n" % i for i in range(10_000))
        malformed = {
            "a 100 kB path": b"GET /" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            "a 100 kB header": b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 100_000 + b"\r\n\r\n",
            "10,000 headers": b"GET /metrics HTTP/1.1\r\n" + many_headers + b"\r\n",
            "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
            "a bad request line": b"GARBAGE\r\n\r\n",
            "bytes that are not UTF-8 in the path": b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n",
            "a body it never sends": b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nabc",
        }  # fmt: skip
        for name, data in malformed.items():
            status = status_of(raw(worker.port, data))
            assert status == 0 or 400 <= status < 500, (name, status)

        # Still at work: events published now are all counted.
        log = tmp_path / "after.jsonl"
        lines = mixed_log(["syrym", "kairak"], good_count=2000, seed=3)
        write_log(str(log), lines)
        assert run_cli(["replay", str(log), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 60, "the events after")
        text = worker.log_path.read_text()
        assert "Traceback" not in text and '"level":"error"' not in text, text[-3000:]
        refused = [json.loads(line) for line in text.splitlines() if "refused a malformed HTTP request" in line]
        assert refused and all(r["level"] == "warning" and len(r["error"]) < 300 for r in refused), refused
    finally:
        assert worker.stop() == 0, worker.tail()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "web.crt", directory / "web.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_web_config_turns_on_tls_and_basic_auth(broker, tmp_path):
    cert, key = make_certificate(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    worker = Worker(base_env(broker, BORDERMON_WEB_CONFIG=str(config)), tmp_path / "worker.log")
    trusted = ssl.create_default_context(cafile=str(cert))

    def get(path: str, user: str | None = None, password: str = "") -> int:
        conn = http.client.HTTPSConnection("127.0.0.1", worker.port, timeout=10, context=trusted)
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        wait_until(lambda: get("/healthz", "prometheus", "s3cret") == 200, 60, "the worker on TLS")
        assert get("/metrics") == 401
        assert get("/metrics", "prometheus", "wrong") == 401
        assert get("/metrics", "nobody", "s3cret") == 401
        assert get("/metrics", "prometheus", "s3cret") == 200
        assert get("/router/", "prometheus", "s3cret") == 404
        body = json.loads(
            urlopen_tls(worker.port, "/healthz", trusted, "prometheus", "s3cret")
        )  # what a scraper with the right settings gets
        assert body["status"] == "ok"
        assert status_of(raw(worker.port, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")) in (0, 400)  # plain HTTP
    finally:
        assert worker.stop() == 0, worker.tail()


def urlopen_tls(port: int, path: str, context: ssl.SSLContext, user: str, password: str) -> bytes:
    import urllib.request

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=10, context=context) as r:
        return r.read()


def test_a_bad_web_config_is_one_line(tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  prometheus: plain-text-password\n")
    done = run_cli(["worker"], {"PATH": "/usr/bin:/bin", "BORDERMON_WEB_CONFIG": str(config),
                                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bordermon: error: web config {config}: the password of 'prometheus' must be a bcrypt hash ($2b$...)"
    ]
