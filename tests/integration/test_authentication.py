"""Issue 6, security: the Kafka security settings reach the wire of an authenticating broker.

The embedded broker (Tansu, `--authentication`) can enforce SASL but cannot hold a user here
(docs/reliability.md, "Security"), so a successful login cannot be shown on this machine. What
is shown against the real broker: it refuses our plaintext client, our SCRAM settings make the
client negotiate SCRAM instead of speaking plaintext, and either way the command stops with one
line that names the security in use and never the password.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.processes import BIN, Broker, base_env

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "producers" / "samples" / "border-sample.jsonl.gz"
SCRAM = {
    "BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "BORDERMON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "BORDERMON_KAFKA_SASL_USERNAME": "alice",
    "BORDERMON_KAFKA_SASL_PASSWORD": "s3cret-never-printed",
}


def refusals(broker: Broker) -> int:
    """Requests the broker refused because the connection had not authenticated."""
    assert broker.log_path is not None
    return broker.log_path.read_text(errors="replace").count("NotAuthenticated")


def start_replay(broker: Broker, security: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BIN, "replay", str(SAMPLE), "--max-speed", "-q"], env=base_env(broker, **security),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_authenticating_broker_refuses_plaintext_and_our_scram_settings_negotiate_scram(tmp_path):
    plain_broker = Broker(authentication=True, log_path=tmp_path / "plain-broker.log")
    scram_broker = Broker(authentication=True, log_path=tmp_path / "scram-broker.log")
    try:
        # Both at once: each waits out the client's bootstrap timeout (30 s) on its own broker.
        plain, scram = start_replay(plain_broker, {}), start_replay(scram_broker, SCRAM)
        plain_out, plain_err = plain.communicate(timeout=90)
        scram_out, scram_err = scram.communicate(timeout=90)
    finally:
        plain_broker.stop()
        scram_broker.stop()

    assert plain.returncode == 2 and plain_out == "", plain_err
    assert plain_err.count("\n") == 1 and plain_err.startswith("bordermon: error: cannot talk to Kafka"), plain_err
    assert "with PLAINTEXT" in plain_err and "BORDERMON_KAFKA_SECURITY_PROTOCOL" in plain_err
    assert refusals(plain_broker) > 0, "the broker did not enforce authentication"

    assert scram.returncode == 2 and scram_out == "", scram_err
    assert scram_err.count("\n") == 1, scram_err
    assert "with SASL_PLAINTEXT as alice (SCRAM-SHA-256)" in scram_err, scram_err
    assert "s3cret" not in scram_err
    # The SCRAM client never sent an unauthenticated request: it went through the SASL handshake
    # and the SCRAM exchange, which fails only because no user can exist on this broker.
    assert refusals(scram_broker) == 0, scram_broker.log_path.read_text()[-2000:]
