"""Graceful stop for long-running commands: SIGTERM (and Ctrl-C) set a flag the loop checks."""

from __future__ import annotations

import signal
import time
from types import FrameType


class StopFlag:
    def __init__(self) -> None:
        self.requested: str | None = None

    def install(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum).name

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake within 0.1 s of a stop request."""
        deadline = time.monotonic() + seconds
        while self.requested is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
