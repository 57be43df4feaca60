"""Graceful stop for long-running commands: SIGTERM, Ctrl-C and a closed terminal (SIGHUP) set a
flag the loop checks.

SIGHUP's default action ends a process at once, with no clean-up: closing the terminal of a
`bordermon demo` used to leave its broker, worker and simulator running. `hangup_as_terminate`
turns a hang-up into a SIGTERM to the process itself, so every command, and every library that
handles SIGTERM (Faust's worker, aiohttp), stops the same way for both.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _terminate_self(signum: int, frame: FrameType | None) -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def hangup_as_terminate() -> None:
    signal.signal(signal.SIGHUP, _terminate_self)


class Stopped(KeyboardInterrupt):
    """A stop signal raised where the program is, as Ctrl-C raises KeyboardInterrupt: `finally`
    blocks run, so child processes are stopped and files closed instead of left behind."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def stop_by_exception() -> None:
    """For commands that run to completion (backtest, backfill, report): SIGTERM, and SIGHUP
    through `hangup_as_terminate`, interrupt them as Ctrl-C does. Without it the default action
    ended the process at once and left a backtest's shard processes running."""
    signal.signal(signal.SIGTERM, _raise_stopped)


class StopFlag:
    def __init__(self) -> None:
        self.requested: str | None = None

    def install(self) -> StopFlag:
        for sig in STOP_SIGNALS:
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
