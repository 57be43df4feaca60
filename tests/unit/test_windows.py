import random

from streams.domain.windows import NetFlowWindow


def brute(entries, now, width):
    return sum(n for t, n in entries if now - width < t <= now)


def test_window_edges_are_half_open():
    w = NetFlowWindow()
    for t, n in [(0, 5), (100, -2), (900, 3), (1000, 1)]:
        w.add(t, n)
    assert w.sum_over(1000, 900) == 3 + 1  # (100, 1000]: t=100 is excluded
    assert w.sum_over(1000, 901) == -2 + 3 + 1  # (99, 1000]
    assert w.sum_over(1000, 86400) == 5 - 2 + 3 + 1


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
            for width in (900, 3600, 86400):
                assert w.sum_over(now, width) == brute(entries, now, width)
