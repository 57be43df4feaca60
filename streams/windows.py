"""Event-time rolling net flow: exact sums over (T - W, T] from a sorted list of crossings.

Crossings are appended in ts order (out-of-order ones are inserted), pruned to the longest
window, and summed only when metrics are read: no per-event window bookkeeping. They are kept
in flat arrays (16 bytes a crossing; a list of floats and ints costs ~50): a busy day holds
millions.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

WINDOWS: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0}
LONGEST = max(WINDOWS.values())


class NetFlowWindow:
    __slots__ = ("net", "total", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.net = array("q")
        self.total = 0

    def add(self, ts: float, net: int) -> None:
        if not self.ts or ts >= self.ts[-1]:
            self.ts.append(ts)
            self.net.append(net)
        else:
            i = bisect_right(self.ts, ts)
            self.ts.insert(i, ts)
            self.net.insert(i, net)
        self.total += net

    def prune(self, now: float) -> None:
        """Drop crossings that no window ending at `now` can contain."""
        cut = bisect_right(self.ts, now - LONGEST)
        if cut:
            self.total -= sum(self.net[:cut])
            del self.ts[:cut]
            del self.net[:cut]

    def sum_over(self, now: float, seconds: float) -> int:
        """Net persons with ts in (now - seconds, now]."""
        lo = bisect_right(self.ts, now - seconds)
        hi = bisect_right(self.ts, now)
        if lo == 0 and hi == len(self.ts):
            return self.total
        return sum(self.net[lo:hi])

    def __len__(self) -> int:
        return len(self.ts)
