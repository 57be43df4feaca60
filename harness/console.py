"""Progress lines for long runs (bench, accuracy, the Kafka harness): `prefix: text` on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable


def say_as(prefix: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"{prefix}: {text}", file=sys.stderr, flush=True)

    return say
