"""Kafka client security settings: parsed from the environment, given to every client, never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bordermon.errors import BordermonError
from bordermon.security import client_options, faust_credentials, from_env

SASL = {
    "BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "BORDERMON_KAFKA_SASL_MECHANISM": "scram-sha-256",
    "BORDERMON_KAFKA_SASL_USERNAME": "alice",
    "BORDERMON_KAFKA_SASL_PASSWORD": "s3cret",
}


def test_plaintext_by_default():
    security = from_env({})
    assert client_options(security) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(security) is None


def test_sasl_scram_for_kafka_python_and_faust():
    security = from_env(SASL)
    assert client_options(security) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "s3cret",
    }
    creds = faust_credentials(security)
    assert (creds.username, creds.password, str(creds.mechanism.value)) == ("alice", "s3cret", "SCRAM-SHA-256")


def test_password_from_a_file_and_tls_context(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    env = {**SASL, "BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "BORDERMON_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    del env["BORDERMON_KAFKA_SASL_PASSWORD"]
    options = client_options(from_env(env))
    assert options["sasl_plain_password"] == "from-file"
    assert options["ssl_context"] is not None


def test_the_same_options_configure_aiokafka_clients(tmp_path):
    """replay and simulate publish with aiokafka: it must accept every option kafka-python gets."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    env = {**SASL, "BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}

    async def build() -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **client_options(from_env(env)))

    producer = asyncio.run(build())
    client = producer.client
    assert (client._security_protocol, client._sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("alice", "s3cret")
    assert client._ssl_context is not None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BORDERMON_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of"),
        ({"BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "needs BORDERMON_KAFKA_SASL_USERNAME"),
        ({**SASL, "BORDERMON_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SASL_MECHANISM"),
        ({"BORDERMON_KAFKA_SECURITY_PROTOCOL": "SSL", "BORDERMON_KAFKA_SSL_CAFILE": "/nope.pem"}, "no such file"),
    ],
)
def test_bad_settings_are_one_clear_line(env, message):
    with pytest.raises(BordermonError, match=message):
        from_env(env)


def test_secrets_never_appear_in_config_output_or_the_repository():
    bin_ = str(Path(sys.executable).with_name("bordermon"))
    out = subprocess.run([bin_, "config"], capture_output=True, text=True, env={**os.environ, **SASL}).stdout
    assert "s3cret" not in out
    root = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=root).stdout.split()
    for name in tracked:
        if name.endswith((".yml", ".yaml", ".toml", ".env")):
            text = (root / name).read_text(errors="replace")
            assert "BORDERMON_KAFKA_SASL_PASSWORD:" not in text, name
