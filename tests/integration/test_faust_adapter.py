"""The Faust adapter (streams/worker/faustadapter.py) with the real pinned Faust consumer against the
broker (both kinds): whole fetches reach the handler in one call, in offset order, and a batch's
offsets are committed only once the future the handler returned is done."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from harness.processes import base_env, wait_until

pytestmark = pytest.mark.integration
APP = Path(__file__).resolve().parents[1] / "fixtures" / "adapter_app.py"
GROUP = "bordermon-adapter-test"


def committed(admin: KafkaAdminClient) -> int | None:
    offsets = admin.list_group_offsets(GROUP).get(GROUP, {})
    meta = offsets.get(TopicPartition("adapter.events", 0))
    return None if meta is None or meta.offset < 0 else meta.offset


@pytest.mark.brokers("tansu", "kafka")
def test_batches_are_whole_and_committed_only_when_durable(broker, tmp_path):
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("adapter.events", 2, 1)])
    producer = KafkaProducer(bootstrap_servers=broker.address, linger_ms=5)
    for i in range(500):
        producer.send("adapter.events", value=b"m%d" % i, partition=0)
    producer.flush()
    producer.close()
    release, out, log = tmp_path / "release", tmp_path / "batches.jsonl", tmp_path / "app.log"
    out.touch()
    env = {**base_env(broker), "ADAPTER_RELEASE": str(release), "ADAPTER_OUT": str(out),
           "PYTHONPATH": str(APP.parents[2])}  # fmt: skip
    with open(log, "wb") as sink:
        app = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:

        def delivered() -> list[int]:
            offsets = []
            for line in out.read_text().splitlines():
                batch = json.loads(line)
                if batch["partition"] == 0:
                    offsets += batch["offsets"]
            return offsets

        wait_until(lambda: len(delivered()) >= 500, 60, "all 500 messages delivered")
        offsets = delivered()
        assert offsets == list(range(500)), "each once, in offset order"
        batches = [json.loads(line) for line in out.read_text().splitlines()]
        assert max(len(b["offsets"]) for b in batches) > 1, "a fetch reaches the handler as one batch"
        # Not durable yet: several commit intervals (0.2 s) pass without the offsets committed.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert not committed(admin), "offsets committed before the batch was durable"
            time.sleep(0.2)
        release.touch()
        wait_until(lambda: committed(admin) == 500, 30, "the offsets committed once durable")
        app.send_signal(signal.SIGTERM)
        assert app.wait(20) == 0, log.read_text()[-2000:]
    finally:
        if app.poll() is None:
            app.kill()
        admin.close()
