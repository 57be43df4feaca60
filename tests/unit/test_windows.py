import random

from streams.domain.windows import NetFlowWindow


def brute(entries, now, width):
    return sum(n for t, n in entries if now - width < t <= now)


def test_window_edges_are_half_open():
    w = NetFlowWindow()
    for t, n in [(0, 5), (100, -2), (900, 3), (1000, 1)]:
        w.add(t, n)
    sums = w.sums_over(1000, {"a": 900, "b": 901, "c": 86400})
    assert sums == {"a": 3 + 1, "b": -2 + 3 + 1, "c": 5 - 2 + 3 + 1}  # (100, 1000]: t=100 is excluded
    assert w.sums_over(950, {"a": 51, "b": 900}) == {"a": 3, "b": -2 + 3}  # the crossing after `now` left out


def test_random_out_of_order_matches_brute_force_with_pruning():
    rng = random.Random(7)
    w, entries, now = NetFlowWindow(), [], 0.0
    for _ in range(5000):
        t = now + rng.uniform(-300, 120)
        n = rng.choice([-3, -1, 1, 2, 40])
        now = max(now, t)
        w.add(t, n)
        entries.append((t, n))
        if rng.random() < 0.1:
            w.prune(now)
        if rng.random() < 0.05:
            widths = {"15m": 900, "1h": 3600, "24h": 86400}
            assert w.sums_over(now, widths) == {k: brute(entries, now, width) for k, width in widths.items()}
            del widths["24h"]  # earlier, with later crossings to leave out (24 h before it may be pruned)
            assert w.sums_over(now - 200, widths) == {k: brute(entries, now - 200, v) for k, v in widths.items()}
