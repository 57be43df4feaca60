"""Compare what the pipeline exported (Prometheus text, alert messages) with the oracle."""

from __future__ import annotations

import json
import math
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from bordermon.timeutil import parse_rfc3339
from tests.oracle import Expected


def parse_metrics(text: str) -> dict[str, dict[tuple, float]]:
    """metric sample name -> {sorted label items: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def sample(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())))


def assert_metrics_match(metrics: dict, exp: Expected, checkpoints: list[str]) -> None:
    problems: list[str] = []

    def check(name: str, want: float, **labels: str) -> None:
        got = sample(metrics, name, **labels)
        same = got is not None and (got == want or (math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)))
        if not same:
            problems.append(f"{name}{labels}: got {got}, want {want}")

    for t in ("arrival", "crossing", "lanes"):
        check("border_events_accepted_total", exp.accepted[t], type=t)
    for r in ("malformed", "invalid", "unknown_checkpoint", "duplicate"):
        check("border_events_rejected_total", exp.rejected[r], reason=r)
    for cid in checkpoints:
        for d in ("in", "out"):
            check("border_crossing_persons_total", exp.persons[(cid, d)], checkpoint=cid, direction=d)
            check("border_queue_length", exp.queue[(cid, d)], checkpoint=cid, direction=d)
            check("border_lanes_open", exp.lanes[(cid, d)], checkpoint=cid, direction=d)
            check("border_queue_wait_estimate_seconds", exp.wait[(cid, d)], checkpoint=cid, direction=d)
            check("border_queue_wait_observed_seconds", exp.observed[(cid, d)], checkpoint=cid, direction=d)
            for sev in ("warning", "critical"):
                check("border_alerts_firing", exp.firing[(cid, d, sev)], checkpoint=cid, direction=d, severity=sev)
        for w in ("15m", "1h", "24h"):
            check("border_net_flow_persons", exp.net[(cid, w)], checkpoint=cid, window=w)
        if cid in exp.last_ts:
            check("border_last_event_timestamp_seconds", exp.last_ts[cid], checkpoint=cid)
        elif sample(metrics, "border_last_event_timestamp_seconds", checkpoint=cid) is not None:
            problems.append(f"border_last_event_timestamp_seconds for idle {cid} should be absent")
    for c, n in exp.cumulative.items():
        check("border_net_flow_cumulative_persons", n, citizenship=c)
    exported = {dict(k)["citizenship"] for k in metrics.get("border_net_flow_cumulative_persons", {})}
    if exported != set(exp.cumulative):
        problems.append(f"citizenships exported {sorted(exported)} != expected {sorted(exp.cumulative)}")
    assert not problems, f"{len(problems)} metric mismatches:\n" + "\n".join(problems[:40])


def alert_tuples(messages: list[bytes]) -> list[tuple]:
    """The QueueOverload transitions (the contract's; other alertnames may share the topic)."""
    out = []
    for raw in messages:
        a = json.loads(raw)
        if a["alertname"] != "QueueOverload":
            assert a["alertname"] == "QueueOverloadForecast", a["alertname"]
            continue
        out.append(
            (
                a["checkpoint_id"],
                a["direction"],
                a["severity"],
                a["status"],
                parse_rfc3339(a["starts_at"]),
                parse_rfc3339(a["fired_at"]),
                None if a["ends_at"] is None else parse_rfc3339(a["ends_at"]),
            )
        )
    return out


def assert_alerts_match(messages: list[bytes], exp: Expected) -> None:
    """Same transitions, and in the same order for each (checkpoint, direction, severity)."""
    got, want = alert_tuples(messages), list(exp.transitions)
    missing, extra = Counter(want) - Counter(got), Counter(got) - Counter(want)
    assert not missing and not extra, f"alerts differ: missing {list(missing)[:5]}, extra {list(extra)[:5]}"
    for key in {t[:3] for t in want}:
        assert [t for t in got if t[:3] == key] == [t for t in want if t[:3] == key], f"order differs for {key}"
