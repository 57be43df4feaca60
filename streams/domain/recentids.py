"""The event ids a checkpoint accepted recently, with their event times: exact, and compact.

Duplicate detection keeps every id of the last 24 h of event time, so this is the worker's
largest structure: at a busy day's 2,000,000 ids a `dict[str, float]` costs ~180 bytes per id
(the key string ~60, the float 24, the dict slot ~50-100). Here an id costs ~45-70: an
open-addressing table in two flat arrays (hash, entry number), the entries in two more (event
time, where the id's bytes end) and the ids' UTF-8 bytes in one arena.

Exact, never probabilistic: the hash only finds candidates; an id is "seen" only when its bytes
equal the stored bytes, so a hash collision (2^-64 per pair with Python's SipHash) costs one
extra comparison, never a false duplicate. A false duplicate would lose an event; a compact
filter (Bloom, cuckoo, a bare 64-bit hash) would have that risk, this has none.

Expired ids are not removed one by one: when the table is full it is rebuilt with only the ids
newer than the horizon the caller last set, in twice their number of slots (amortised O(1)
per insert).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

_EMPTY = 0
_MIN_SLOTS = 8
_MAX_LOAD = 0.7  # rebuild when this full...
_REBUILT_LOAD = 0.5  # ...into a table at most this full (35% after growing): ~50% on average
# Below this many slots a table that grows grows fourfold: a registry of thousands of quiet
# checkpoints otherwise spends a tenth of its time rebuilding small tables (`make bench`, scale).
# Not further: at 4,096 a table of 358 ids went from 512 slots to 2,048, where recovery sizes it
# at 1,024, and 2,400 checkpoints x 3 lane groups held 28 MB more slots while draining than after
# a restart (84.4 -> 56.2 MB for 2,000,000 ids). A table of 717-1,433 ids pays one rebuild more,
# which `_grow` keeps cheap (bench/README.md, 2026-12-07).
_SMALL_TABLE = 1024


# The id's str hash (SipHash, 64 bits). A module name, not the builtin, so the collision tests
# can force every id onto one key (the hot loops below use it inline as `_hash(id) or 1`).
_hash = hash


def _key(event_id: str) -> int:
    """The table key of an id, never 0 (0 marks an empty slot)."""
    return _hash(event_id) or 1


class RecentIds:
    # The slots, in two arrays: an id's hash (`keys`) and its entry number (`entries`); the
    # entries, appended as ids arrive and laid out again by a rebuild: the id's event time
    # (`times`) and where its bytes end in the arena (`bounds`, after a leading 0: entry n's bytes
    # are arena[bounds[n]:bounds[n + 1]]). A slot costs 12 bytes and an entry 12, where three
    # arrays of slots (hash, arena reference, time) cost 24 a slot: with tables about half full,
    # ~20 bytes less an id (2,000,000 ids on 2,400 checkpoints, measured: 157 MB -> 120 MB with
    # the arenas). `bounds` are 32-bit: one checkpoint's day of ids stays far under 4 GiB of
    # bytes (2,000,000 ids of 20 bytes are 40 MB).
    __slots__ = ("arena", "bounds", "entries", "horizon", "keys", "limit", "mask", "times", "used")

    def __init__(self, slots: int = _MIN_SLOTS) -> None:
        self.keys = array("q", bytes(8 * slots))  # hash of the id (never 0), 0 = empty slot
        self.entries = array("I", bytes(4 * slots))  # the slot's entry number
        self.times = array("d")  # per entry: the event time the id was accepted at
        self.bounds = array("I", (0,))  # per entry, after a leading 0: where its bytes end
        self.arena = bytearray()
        self.mask = slots - 1
        self.used = 0
        self.limit = int(slots * _MAX_LOAD)
        self.horizon = float("-inf")  # ids at or before this event time may be dropped

    def __len__(self) -> int:
        return self.used

    def _find(self, event_id: str, key: int) -> int:
        """The slot holding `event_id`, or the empty slot where it would go."""
        keys, mask, raw = self.keys, self.mask, event_id.encode()
        i = key & mask
        while True:
            k = keys[i]
            if k == _EMPTY:
                return i
            if k == key:
                n = self.entries[i]
                if self.arena[self.bounds[n] : self.bounds[n + 1]] == raw:
                    return i
            i = (i + 1) & mask

    def get(self, event_id: str) -> float | None:
        """The event time `event_id` was last accepted at, if it is still held."""
        i = self._find(event_id, _key(event_id))
        return None if self.keys[i] == _EMPTY else self.times[self.entries[i]]

    def check_and_add(self, event_id: str, t: float, window_start: float) -> bool:
        """True (and nothing changed) when `event_id` was accepted after `window_start`;
        otherwise remember it at event time `t` and return False. One probe sequence."""
        # `_find` inlined: this runs once per event, and the calls were a third of its cost.
        key = _hash(event_id) or 1
        keys, mask = self.keys, self.mask
        raw = event_id.encode()
        i = key & mask
        while True:
            k = keys[i]
            if k == _EMPTY:
                self._insert_at(i, key, raw, t)
                return False
            if k == key:
                n = self.entries[i]
                bounds = self.bounds
                if self.arena[bounds[n] : bounds[n + 1]] == raw:
                    if self.times[n] > window_start:
                        return True
                    self.times[n] = t  # seen, but long enough ago: accepted again
                    return False
            i = (i + 1) & mask

    def put_many(self, pairs: Sequence[tuple[str, float]]) -> None:
        """`put` for each (id, event time) in order: recovery loads a checkpoint's persisted ids
        at once, into a table sized for all of them (no rebuild on the way)."""
        self.reserve(len(pairs))
        keys, entries, times, bounds, arena, mask = (
            self.keys,
            self.entries,
            self.times,
            self.bounds,
            self.arena,
            self.mask,
        )
        used = self.used
        for event_id, t in pairs:
            key = _hash(event_id) or 1  # `_key`, inlined: this loop runs once per id at recovery
            raw = event_id.encode()
            i = key & mask
            while True:
                k = keys[i]
                if k == _EMPTY:
                    keys[i] = key
                    entries[i] = len(times)
                    times.append(t)
                    arena += raw
                    bounds.append(len(arena))
                    used += 1
                    break
                if k == key:
                    n = entries[i]
                    if arena[bounds[n] : bounds[n + 1]] == raw:
                        times[n] = t
                        break
                i = (i + 1) & mask
        self.used = used

    def reserve(self, more: int) -> None:
        """Make room for `more` new ids without a rebuild in between."""
        if self.used + more > self.limit:
            self._rebuild(self.used + more)

    def _insert_at(self, i: int, key: int, raw: bytes, t: float) -> None:
        times, arena = self.times, self.arena
        self.keys[i] = key
        self.entries[i] = len(times)
        times.append(t)
        arena += raw  # in place: the bytearray is self.arena
        self.bounds.append(len(arena))
        self.used += 1
        if self.used > self.limit:
            self._rebuild()

    def items(self) -> Iterator[tuple[str, float]]:
        """(id, event time) of every id held, expired ones included until the next rebuild."""
        times, bounds, arena = self.times, self.bounds, self.arena
        for n in range(len(times)):
            yield arena[bounds[n] : bounds[n + 1]].decode(), times[n]

    def _rebuild(self, room: int = 0) -> None:
        """Keep the ids newer than the horizon, in a table at least twice their number (or room
        for `room` ids)."""
        keys, entries, times, bounds, arena = self.keys, self.entries, self.times, self.bounds, self.arena
        horizon = self.horizon
        if not times or min(times) > horizon:
            self._grow(room)  # nothing expired: the entries stay as they are
            return
        live = [i for i in range(len(keys)) if keys[i] != _EMPTY and times[entries[i]] > horizon]
        fresh = RecentIds(self._slots_for(max(len(live), room)))
        fresh.horizon = horizon
        new_keys, new_entries, new_times, new_bounds = fresh.keys, fresh.entries, fresh.times, fresh.bounds
        new_arena, mask = fresh.arena, fresh.mask
        for i in live:
            key, n = keys[i], entries[i]
            j = key & mask
            while new_keys[j] != _EMPTY:  # every id here is distinct: no comparison needed
                j = (j + 1) & mask
            new_keys[j] = key
            new_entries[j] = len(new_times)
            new_times.append(times[n])
            new_arena += arena[bounds[n] : bounds[n + 1]]
            new_bounds.append(len(new_arena))
        self.keys, self.entries, self.times, self.bounds = new_keys, new_entries, new_times, new_bounds
        self.arena, self.mask, self.limit, self.used = new_arena, mask, fresh.limit, len(live)

    def _slots_for(self, ids: int) -> int:
        slots = _MIN_SLOTS
        while slots * _REBUILT_LOAD < ids + 1:
            slots *= 2
        if len(self.keys) < slots < _SMALL_TABLE:
            slots = min(_SMALL_TABLE, max(slots, 4 * len(self.keys)))
        return slots

    def _grow(self, room: int) -> None:
        """A rebuild that drops nothing: only the slots are laid out again, each keeping its
        entry number; the entries and the arena are not copied (half a rebuild's work)."""
        keys, entries = self.keys, self.entries
        slots = self._slots_for(max(self.used, room))
        new_keys, new_entries = array("q", bytes(8 * slots)), array("I", bytes(4 * slots))
        mask = slots - 1
        for i, key in enumerate(keys):
            if key != _EMPTY:
                j = key & mask
                while new_keys[j] != _EMPTY:  # every id here is distinct: no comparison needed
                    j = (j + 1) & mask
                new_keys[j] = key
                new_entries[j] = entries[i]
        self.keys, self.entries, self.mask, self.limit = new_keys, new_entries, mask, int(slots * _MAX_LOAD)


class IdSet(Protocol):
    """What a checkpoint's duplicate detection needs of its ids (RecentIds or PlainIds)."""

    horizon: float

    def __len__(self) -> int: ...
    def get(self, event_id: str) -> float | None: ...
    def check_and_add(self, event_id: str, t: float, window_start: float) -> bool: ...
    def put_many(self, pairs: Sequence[tuple[str, float]]) -> None: ...
    def items(self) -> Iterator[tuple[str, float]]: ...


class PlainIds:
    """`RecentIds`' contract in a dict: about three times the memory per id and several times
    faster to probe. For in-process runs over a log (backtest, backfill, report, accuracy),
    which hold a day of ids briefly; a worker holds them for good and uses `RecentIds`."""

    __slots__ = ("horizon", "limit", "times")

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.horizon = float("-inf")
        self.limit = 1024

    def __len__(self) -> int:
        return len(self.times)

    def get(self, event_id: str) -> float | None:
        return self.times.get(event_id)

    def check_and_add(self, event_id: str, t: float, window_start: float) -> bool:
        seen = self.times.get(event_id)
        if seen is not None and seen > window_start:
            return True
        self.times[event_id] = t
        if len(self.times) > self.limit:
            self._drop_expired()
        return False

    def put_many(self, pairs: Sequence[tuple[str, float]]) -> None:
        self.times.update(pairs)
        if len(self.times) > self.limit:
            self._drop_expired()

    def items(self) -> Iterator[tuple[str, float]]:
        return iter(self.times.items())

    def _drop_expired(self) -> None:
        horizon = self.horizon
        self.times = {k: v for k, v in self.times.items() if v > horizon}
        self.limit = max(1024, 2 * len(self.times))


IdSetFactory = Callable[[], IdSet]
