"""An independent model of the operator contract, used to check the real pipeline.

Written from CONTRACT.md with plain `json`, `datetime` and explicit states; it shares no code
with `bordermon.events` or `streams/` on purpose.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import pycountry
import yaml

COUNTRIES = {c.alpha_2 for c in pycountry.countries}
MODES = {"car", "bus", "truck", "pedestrian", "rail", "air"}
AGES = {"0-17", "18-28", "29-39", "40-59", "60+"}
SEXES = {"m", "f", "x"}
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def classify(line: bytes, now: float) -> tuple[str, dict | None, float | None]:
    """-> ('ok', event, ts) or (reason, None, None) for malformed / invalid."""
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return "malformed", None, None
    if not isinstance(obj, dict):
        return "malformed", None, None

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    eid = obj.get("event_id")
    if not isinstance(eid, str) or not 1 <= len(eid) <= 128:
        return "invalid", None, None
    if obj.get("type") not in ("arrival", "crossing", "lanes"):
        return "invalid", None, None
    if not isinstance(obj.get("checkpoint_id"), str) or obj.get("direction") not in ("in", "out"):
        return "invalid", None, None
    try:
        dt = datetime.fromisoformat(obj["ts"])
    except (KeyError, TypeError, ValueError):
        return "invalid", None, None
    if dt.tzinfo is None or dt.timestamp() > now + 300:
        return "invalid", None, None
    kind = obj["type"]
    if obj.get("mode") is not None and obj["mode"] not in MODES and kind != "lanes":
        return "invalid", None, None
    if kind == "crossing":
        if not is_int(obj.get("persons")) or not 1 <= obj["persons"] <= 100:
            return "invalid", None, None
        if obj.get("citizenship") not in COUNTRIES:
            return "invalid", None, None
        if obj.get("age_band") is not None and obj["age_band"] not in AGES:
            return "invalid", None, None
        if obj.get("sex") is not None and obj["sex"] not in SEXES:
            return "invalid", None, None
    if kind == "lanes" and (not is_int(obj.get("lanes_open")) or not 0 <= obj["lanes_open"] <= 100):
        return "invalid", None, None
    return "ok", obj, dt.timestamp()


@dataclass
class AlertModel:
    state: str = "inactive"  # inactive | pending | firing
    since: float = 0.0
    fired: float = 0.0


@dataclass
class Expected:
    accepted: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    persons: Counter = field(default_factory=Counter)  # (cp, dir)
    queue: dict = field(default_factory=dict)  # (cp, dir) -> int
    lanes: dict = field(default_factory=dict)
    wait: dict = field(default_factory=dict)
    observed: dict = field(default_factory=dict)  # (cp, dir) -> seconds (first in, first out)
    firing: dict = field(default_factory=dict)  # (cp, dir, sev) -> 0/1
    last_ts: dict = field(default_factory=dict)
    net: dict = field(default_factory=dict)  # (cp, window) -> int
    cumulative: Counter = field(default_factory=Counter)
    transitions: list = field(default_factory=list)


def run_oracle(lines: list[bytes], registry_yaml: str, now: float) -> Expected:
    reg = yaml.safe_load(registry_yaml)
    defaults = reg.get("alerting", {})
    cps = {}
    for c in reg["checkpoints"]:
        over = c.get("alerting") or {}
        cps[c["id"]] = {
            "lanes": {"in": c["lanes"]["in"], "out": c["lanes"]["out"]},
            "cap": c["lane_capacity_per_hour"],
            "thr": {"warning": c["wait_warning_minutes"] * 60, "critical": c["wait_critical_minutes"] * 60},
            "for": over.get("for_minutes", defaults.get("for_minutes", 10)) * 60,
            "ratio": over.get("resolve_ratio", defaults.get("resolve_ratio", 0.8)),
        }
    exp = Expected()
    waiting: dict = defaultdict(list)  # (cp, dir) -> arrival times in the order they joined
    for cid, c in cps.items():
        for d in ("in", "out"):
            exp.queue[(cid, d)] = 0
            exp.lanes[(cid, d)] = c["lanes"][d]
            exp.observed[(cid, d)] = 0.0
    alerts: dict = defaultdict(AlertModel)
    seen: dict = defaultdict(dict)
    crossings: dict = defaultdict(list)

    def wait_of(cid: str, d: str) -> float:
        q, lanes = exp.queue[(cid, d)], exp.lanes[(cid, d)]
        if q == 0:
            return 0.0
        if lanes == 0:
            return math.inf
        return q / (lanes * cps[cid]["cap"]) * 3600

    for line in lines:
        verdict, ev, t = classify(line, now)
        if verdict != "ok":
            exp.rejected[verdict] += 1
            continue
        cid, d = ev["checkpoint_id"], ev["direction"]
        if cid not in cps:
            exp.rejected["unknown_checkpoint"] += 1
            continue
        reference = max(t, exp.last_ts.get(cid, t))
        prev = seen[cid].get(ev["event_id"])
        if prev is not None and prev > reference - 86400:
            exp.rejected["duplicate"] += 1
            continue
        seen[cid][ev["event_id"]] = t
        exp.accepted[ev["type"]] += 1
        exp.last_ts[cid] = max(exp.last_ts.get(cid, t), t)
        if ev["type"] == "arrival":
            exp.queue[(cid, d)] += 1
            waiting[(cid, d)].append(t)
        elif ev["type"] == "crossing":
            exp.queue[(cid, d)] = max(0, exp.queue[(cid, d)] - 1)
            if waiting[(cid, d)]:
                exp.observed[(cid, d)] = max(0.0, t - waiting[(cid, d)].pop(0))
            signed = ev["persons"] if d == "in" else -ev["persons"]
            exp.persons[(cid, d)] += ev["persons"]
            exp.cumulative[ev["citizenship"]] += signed
            crossings[cid].append((t, signed))
        else:
            exp.lanes[(cid, d)] = ev["lanes_open"]
        w = wait_of(cid, d)
        c = cps[cid]
        for sev in ("warning", "critical"):
            a, thr = alerts[(cid, d, sev)], c["thr"][sev]
            if a.state == "firing":
                if w < thr * c["ratio"]:
                    exp.transitions.append((cid, d, sev, "resolved", a.since, a.fired, t))
                    a.state = "inactive"
                continue
            if w < thr:
                a.state = "inactive"
                continue
            if a.state == "inactive":
                a.state, a.since = "pending", t
            if t - a.since >= c["for"]:
                a.state, a.fired = "firing", t
                exp.transitions.append((cid, d, sev, "firing", a.since, t, None))
    for cid in cps:
        for d in ("in", "out"):
            exp.wait[(cid, d)] = wait_of(cid, d)
            for sev in ("warning", "critical"):
                exp.firing[(cid, d, sev)] = 1 if alerts[(cid, d, sev)].state == "firing" else 0
        tc = exp.last_ts.get(cid)
        for name, width in WINDOWS.items():
            exp.net[(cid, name)] = 0 if tc is None else sum(n for ts, n in crossings[cid] if tc - width < ts <= tc)
    return exp
