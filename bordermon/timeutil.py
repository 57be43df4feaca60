"""Event-time helpers: RFC 3339 in and out, Unix seconds inside."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def to_rfc3339(ts: float) -> str:
    """Unix seconds -> RFC 3339 UTC with a `Z` suffix (microseconds only when present)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    """RFC 3339 with an offset -> Unix seconds. Raises ValueError otherwise."""
    dt = datetime.fromisoformat(text.replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return dt.timestamp()


def finite_or_none(value: float, digits: int = 3) -> float | None:
    """JSON has no Infinity: an infinite wait is written as null."""
    return None if math.isinf(value) or math.isnan(value) else round(value, digits)
