"""What a stopping worker must close, and that commands log structured lines."""

from __future__ import annotations

import asyncio
import json
import logging

from bordermon.config import Settings
from bordermon.kafka import BrokerTraits
from bordermon.logs import setup_logging
from bordermon.registry import load_registry
from streams.worker.app import Pipeline


def test_pipeline_shutdown_closes_the_alertmanager_session():
    pipeline = Pipeline(
        Settings(alertmanager_url="http://127.0.0.1:9"), load_registry(None), 8, BrokerTraits(kraft=True)
    )
    pusher = pipeline.pusher
    assert pusher is not None

    async def run() -> None:
        assert not await pusher._post([{"labels": {"alertname": "Test"}}])  # nothing listens: fails, opens a session
        session = pusher.session
        assert session is not None and not session.closed
        await pipeline.shutdown()
        assert session.closed and pusher.session is None

    asyncio.run(run())


def test_setup_logging_writes_one_json_object_per_line(capsys):
    setup_logging("INFO")
    logging.getLogger("bordermon.test").info("file closed", extra={"file": "a.jsonl.gz", "bytes": 12})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["msg"] == "file closed" and entry["file"] == "a.jsonl.gz" and entry["level"] == "info"
