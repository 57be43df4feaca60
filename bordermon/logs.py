"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RefusedRequests(logging.Filter):
    """aiohttp's server logs a request it could not parse (a 100 kB path, a TLS handshake on the
    plain port, bytes that are not HTTP) as an error with a traceback, after answering it with a
    400. For the worker's port that is a client's mistake, not the worker's: one warning line,
    with what was wrong, and no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and _is_bad_request(record.exc_info[1]):
            error = record.exc_info[1]
            record.msg, record.args = "refused a malformed HTTP request", ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.__dict__["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            record.exc_info = record.exc_text = None
        return True


def _is_bad_request(error: BaseException) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError

    return isinstance(error, HttpProcessingError)


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = __import__("time").gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RefusedRequests())
    return handler


# Kafka clients log retries and reconnections as warnings; commands report what matters as one
# line of their own, so these speak only when something is really broken.
QUIET_LIBRARIES = ("kafka", "aiokafka")


def setup_logging(level: str = "INFO", libraries: int = logging.ERROR) -> None:
    """JSON lines on stderr at `level`; the Kafka clients' own loggers at `libraries`."""
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(libraries)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """dictConfig for long-running commands (Faust/mode accept it as `logging_config`)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": "bordermon.logs.json_handler"}},
        "root": {"handlers": ["json"], "level": level},
        # The Kafka clients' retries are noise at INFO; at DEBUG they are what one is looking for.
        "loggers": {name: {"level": level if level == "DEBUG" else "ERROR"} for name in QUIET_LIBRARIES},
    }
