"""Issue 6, security: the Kafka security settings reach the wire of an authenticating broker.

The embedded broker (Tansu, `--authentication`) can enforce SASL but cannot hold a user here
(docs/reliability.md, "Security"), so a successful login cannot be shown on this machine. What
is shown against the real broker: it refuses our plaintext client, our SCRAM settings make the
client negotiate SCRAM instead of speaking plaintext, and either way the command stops with one
line that names the security in use and never the password.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from bordermon.broker import broker_command
from tests.integration.harness import BIN, free_port, wait_until

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "producers" / "samples" / "border-sample.jsonl.gz"
SCRAM = {
    "BORDERMON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "BORDERMON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "BORDERMON_KAFKA_SASL_USERNAME": "alice",
    "BORDERMON_KAFKA_SASL_PASSWORD": "s3cret-never-printed",
}


class AuthenticatingBroker:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115
        command = [*broker_command("127.0.0.1", self.port), "--authentication"]
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True

        wait_until(listening, 10, "the authenticating broker to listen", interval=0.05)

    def refusals(self) -> int:
        """Requests the broker refused because the connection had not authenticated."""
        return self.log_path.read_text(errors="replace").count("NotAuthenticated")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def start_replay(broker: AuthenticatingBroker, security: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BORDERMON_", "KAFKA_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker.port}", **security})
    return subprocess.Popen(
        [BIN, "replay", str(SAMPLE), "--max-speed", "-q"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_authenticating_broker_refuses_plaintext_and_our_scram_settings_negotiate_scram(tmp_path):
    plain_broker = AuthenticatingBroker(tmp_path / "plain-broker.log")
    scram_broker = AuthenticatingBroker(tmp_path / "scram-broker.log")
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
    assert plain_broker.refusals() > 0, "the broker did not enforce authentication"

    assert scram.returncode == 2 and scram_out == "", scram_err
    assert scram_err.count("\n") == 1, scram_err
    assert "with SASL_PLAINTEXT as alice (SCRAM-SHA-256)" in scram_err, scram_err
    assert "s3cret" not in scram_err
    # The SCRAM client never sent an unauthenticated request: it went through the SASL handshake
    # and the SCRAM exchange, which fails only because no user can exist on this broker.
    assert scram_broker.refusals() == 0, scram_broker.log_path.read_text()[-2000:]
