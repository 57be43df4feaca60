"""The compact id table behind duplicate detection: exact, whatever the hashes do."""

from __future__ import annotations

import random

import pytest

from streams.domain import recentids
from streams.domain.recentids import PlainIds, RecentIds

DAY = 86400.0


@pytest.mark.parametrize("kind", [RecentIds, PlainIds])
def test_an_id_is_a_duplicate_within_the_window_and_accepted_again_after_it(kind):
    ids = kind()
    assert not ids.check_and_add("a", 100.0, 100.0 - DAY)
    assert ids.check_and_add("a", 200.0, 200.0 - DAY), "seen 100 s ago"
    assert ids.get("a") == 100.0, "a duplicate does not move the first sighting"
    assert not ids.check_and_add("a", 100.0 + DAY + 1, 1.0 + 100.0), "a day later it counts again"
    assert ids.get("a") == 100.0 + DAY + 1
    assert ids.get("b") is None


@pytest.mark.parametrize("kind", [RecentIds, PlainIds])
def test_it_agrees_with_a_plain_dict_through_growth_rebuilds_and_expiry(kind):
    rng = random.Random(5)
    ids, reference = kind(), {}
    t = 0.0
    for n in range(60_000):
        t += rng.uniform(0, 4)
        event_id = f"cp-{rng.randrange(40_000)}-é" if n % 7 else f"x{n}"
        window_start = t - DAY
        expected = reference.get(event_id, -1e18) > window_start
        assert ids.check_and_add(event_id, t, window_start) is expected, (n, event_id)
        if not expected:
            reference[event_id] = t
        if n % 5000 == 0:
            ids.horizon = t - DAY  # as CheckpointState.prune sets it
    held = dict(ids.items())
    assert all(held[k] == v for k, v in reference.items() if v > ids.horizon), "every live id kept, exactly"
    assert len(ids) <= len(reference)


def test_colliding_hashes_never_make_a_false_duplicate(monkeypatch):
    monkeypatch.setattr(recentids, "_hash", lambda _event_id: 42)  # every id has the same hash
    ids = RecentIds()
    names = [f"id-{i}" for i in range(500)]
    for i, name in enumerate(names):
        assert not ids.check_and_add(name, float(i), -1.0), name
    assert all(ids.check_and_add(name, 1000.0, -1.0) for name in names)
    assert ids.get("id-500") is None
    assert sorted(ids.items()) == sorted((name, float(i)) for i, name in enumerate(names))
    assert len({ids.keys[i] for i in range(len(ids.keys)) if ids.keys[i]}) == 1, "the ids really collided"
    loaded = RecentIds()  # recovery's bulk load, same keys
    loaded.put_many([(name, float(i)) for i, name in enumerate(names)] + [("id-7", 99.0)])
    assert sorted(loaded.items()) == sorted(
        (name, 99.0 if name == "id-7" else float(i)) for i, name in enumerate(names)
    )


@pytest.mark.parametrize("event_id", ["", "ж" * 128, "a\x00b"])
def test_any_valid_id_round_trips(event_id):
    ids = RecentIds()
    ids.put_many([(event_id, 7.0)])
    assert list(ids.items()) == [(event_id, 7.0)]
    assert ids.check_and_add(event_id, 8.0, 0.0)


def test_memory_per_id_is_a_fraction_of_a_dict():
    ids = RecentIds()
    for i in range(100_000):  # the worker's path: grown by rebuilds, not presized
        assert not ids.check_and_add(f"syrym-2022-09-26-{i:07d}", float(i), float("-inf"))
    slots = (ids.keys.itemsize + ids.entries.itemsize) * len(ids.keys)
    entries = ids.times.itemsize * len(ids.times) + ids.bounds.itemsize * len(ids.bounds)
    per_id = (slots + entries + len(ids.arena)) / len(ids)
    assert per_id < 80, per_id  # 67; 87 when the slots held three arrays


def test_a_table_grown_by_inserts_holds_no_more_slots_than_its_recovered_copy():
    """Past the small tables, a table grown event by event is no bigger than the one recovery
    loads the same ids into: a worker's memory while draining is the memory it restarts with
    (at 4,096 a table of 358-716 ids held 2,048 slots, its recovered copy 1,024)."""
    ids = RecentIds()
    for n in range(1, 5001):
        ids.check_and_add(f"id-{n}", float(n), float("-inf"))
        if n >= 358 and n % 7 == 0:
            recovered = RecentIds()
            recovered.put_many(list(ids.items()))
            assert len(ids.keys) <= len(recovered.keys), (n, len(ids.keys), len(recovered.keys))
