"""The simulator queues lane groups apart: a grouped checkpoint gets one queue per group, with the
group's lanes, capacity and share of the parties, while the checkpoints without groups keep
their traffic (each stream has its own generator)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import orjson
import yaml

from bordermon.registry import Registry, parse_registry, registry_text
from producers.scenarios import SCENARIOS
from producers.simulate import simulate
from streams.domain.processor import Processor

GROUPS = """
- {id: cars, modes: [car, bus], lanes: {in: 4, out: 4}, lane_capacity_per_hour: 30}
- {id: trucks, modes: [truck], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 5,
   wait_warning_minutes: 720, wait_critical_minutes: 1440}
- {id: foot, modes: [pedestrian], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 60}
"""


def regrouped(kairak_groups: list | None) -> Registry:
    """The bundled registry without lane groups, but for Kairak's `kairak_groups` (if any)."""
    raw = yaml.safe_load(registry_text())
    for cp in raw["checkpoints"]:
        cp.pop("lane_groups", None)
        if cp["id"] == "kairak" and kairak_groups:
            cp["lane_groups"] = kairak_groups
    return parse_registry(yaml.safe_dump(raw, allow_unicode=True), "regrouped")


def test_a_grouped_checkpoint_queues_its_trucks_apart_and_keeps_its_persons():
    plain, grouped = regrouped(None), regrouped(yaml.safe_load(GROUPS))
    assert [g.id for g in grouped["kairak"].lane_groups] == ["cars", "trucks", "foot"]
    scenario = SCENARIOS["baseline"]
    before = list(simulate(scenario, plain, 3, seed=2))
    after = list(simulate(scenario, grouped, 3, seed=2))

    # Other checkpoints keep their traffic (their own generators): the same times, kinds and waits
    # (ids and demographics come from one generator for the whole run, so they shift).
    def traffic(events: list[dict]) -> list[tuple]:
        return [
            (e["ts"], e["type"], e["direction"], e.get("true_wait_s")) for e in events if e["checkpoint_id"] == "syrym"
        ]

    assert traffic(before) == traffic(after)

    kairak = [e for e in after if e["checkpoint_id"] == "kairak"]
    lanes = [e for e in kairak if e["type"] == "lanes"]
    assert all(e["lane_group"] in ("cars", "trucks", "foot") for e in lanes)
    group_of = {"car": "cars", "bus": "cars", "truck": "trucks", "pedestrian": "foot"}
    waits: dict[str, list[float]] = defaultdict(list)
    for e in kairak:
        if e["type"] == "crossing":
            waits[group_of[e["mode"]]].append(e["true_wait_s"])
    mean = {g: sum(w) / len(w) for g, w in waits.items()}
    assert mean["trucks"] > 5 * mean["cars"], f"one slow truck lane: {mean}"
    # The same parties arrive, only into different queues.
    parties = lambda events: sum(e["type"] == "arrival" for e in events)  # noqa: E731
    plain_kairak = [e for e in before if e["checkpoint_id"] == "kairak"]
    assert abs(parties(kairak) - parties(plain_kairak)) < 3 * parties(plain_kairak) ** 0.5, "parties kept"

    # The pipeline reads the simulated groups as the simulator queued them: nothing invalid, and
    # each group's queue never crossed by a party of another.
    processor = Processor(grouped, 1)
    result = processor.process_events(0, [(i, None, orjson.dumps(e), 0) for i, e in enumerate(after)], now=time.time())
    assert not result.deadletters
    state = processor.partition(0).checkpoints["kairak"]
    arrivals = Counter((e["direction"], group_of[e["mode"]]) for e in kairak if e["type"] == "arrival")
    crossings = Counter((e["direction"], group_of[e["mode"]]) for e in kairak if e["type"] == "crossing")
    for (d, g), n in arrivals.items():
        assert state.queue(d, g).length == n - crossings[(d, g)], (d, g)
