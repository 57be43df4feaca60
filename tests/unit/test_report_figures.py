"""Every figure `bordermon report` and `bordermon backtest` show, computed here without
dashboards/report.py or streams/offline/backtest.py and compared value for value, on logs of many shapes
(hypothesis): starting and ending at any time of day, minutes to days long, out of order a little,
with bad input, duplicates, closed lanes, both QueueOverload and its forecast.

Persons, rejections, waits and QueueOverload come from the independent oracle
(tests/fixtures/oracle.py); the forecast's transitions are the pipeline's own messages (its rule
would need a second implementation of the estimates), and from them the intervals, hours, pages
and leads are recomputed here from their definitions.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bordermon.registry import parse_registry
from dashboards.report import collect, render, report_numbers
from streams.offline.backtest import Backtest, run_backtests
from streams.offline.local import LocalRun
from tests.fixtures.oracle import classify, run_oracle

NOW = 1_800_000_000.0  # the wall clock both sides validate against
DAY = 86400.0
PAGE = 3600.0  # the pager's repeat (monitoring/alertmanager/alertmanager.yml)
STEP = 300.0
REGISTRY = """
alerting: {for_minutes: 5, resolve_ratio: 0.8}
checkpoints:
  - {id: aa, name: "A", region: R, lat: 51.0, lon: 51.0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 6, wait_warning_minutes: 20, wait_critical_minutes: 40}
  - {id: bb, name: "B", region: R, lat: 52.0, lon: 52.0, mode: road, lanes: {in: 2, out: 1},
     lane_capacity_per_hour: 4, wait_warning_minutes: 30, wait_critical_minutes: 90}
"""
CITIZENSHIPS = ["RU", "KZ", "UZ", "KG", "DE", "CN", "TJ"]  # more than the five the chart names


def make_log(seed: int, start: float, span: float, events: int) -> list[bytes]:
    """A log of `events` events over `span` seconds from `start`, mostly in order, with bursts
    of arrivals, closed lanes, bad lines, duplicates and an unknown checkpoint mixed in."""
    rng = random.Random(seed)
    stamps = sorted(start + rng.random() * span for _ in range(events))
    lines: list[bytes] = []
    for i, t in enumerate(stamps):
        if rng.random() < 0.05 and i:  # a little out of order
            t = stamps[i - 1] - rng.random() * 600
        cid = rng.choice(["aa", "aa", "bb", "bb", "zz"] if rng.random() < 0.1 else ["aa", "bb"])
        kind = rng.choices(["arrival", "crossing", "lanes"], [0.6, 0.32, 0.08])[0]
        ev: dict[str, object] = {
            "event_id": f"e{i}", "type": kind, "checkpoint_id": cid, "direction": rng.choice(["in", "out"]),
            "ts": datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z"),
        }  # fmt: skip
        if kind == "crossing":
            ev.update(persons=rng.randint(1, 5), citizenship=rng.choice(CITIZENSHIPS))
        elif kind == "lanes":
            ev["lanes_open"] = rng.choice([0, 1, 2])
        line = orjson.dumps(ev)
        lines.append(line)
        roll = rng.random()
        if roll < 0.03:
            lines.append(line)  # re-sent: a duplicate
        elif roll < 0.05:
            lines.append(b"not json")
        elif roll < 0.07:
            lines.append(orjson.dumps({**ev, "event_id": f"bad{i}", "persons": 0, "type": "crossing"}))
    return lines


def sample_times(lines: list[bytes]) -> list[float]:
    """From the first valid event's time, rounded down to the step, to one step past the last."""
    valid = [t for v, _, t in (classify(line, NOW) for line in lines) if v == "ok"]
    if not valid:
        return []
    t, out = math.floor(valid[0] / STEP) * STEP, []
    while t <= max(valid) + STEP:
        out.append(t)
        t += STEP
    return out


def sampled_waits(lines: list[bytes], times: list[float]) -> dict[float, object]:
    """The oracle's state at each sample time T: after the lines before the first valid event
    (in file order, from where the previous sample was taken) with a time later than T."""
    prefix_of: dict[float, int] = {}
    pending = list(times)
    for i, line in enumerate(lines):
        verdict, _, t = classify(line, NOW)
        while verdict == "ok" and pending and t > pending[0]:
            prefix_of[pending.pop(0)] = i
    for t in pending:
        prefix_of[t] = len(lines)
    states = {n: run_oracle(lines[:n], REGISTRY, NOW) for n in set(prefix_of.values())}
    return {t: states[n] for t, n in prefix_of.items()}


def intervals(messages: list[dict], last_ts: dict[str, float]) -> list[tuple]:
    """(alertname, checkpoint, direction, severity, start, end) from firing/resolved pairs; one
    still firing ends at its checkpoint's last event."""
    out: list[list] = []
    open_: dict[tuple, int] = {}
    for m in messages:
        key = (m["alertname"], m["checkpoint_id"], m["direction"], m["severity"])
        if m["status"] == "firing":
            open_[key] = len(out)
            out.append([*key, iso(m["fired_at"]), None])
        else:
            out[open_.pop(key)][5] = iso(m["ends_at"])
    for row in out:
        if row[5] is None:
            row[5] = last_ts[row[1]]
    return [tuple(row) for row in out]


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pipeline_alerts(lines: list[bytes]) -> list[dict]:
    run = LocalRun(parse_registry(REGISTRY, "test"), NOW)
    return [json.loads(o.value) for result in run.feed(lines) for o in result.alerts]


def check_report(lines: list[bytes]) -> None:
    registry = parse_registry(REGISTRY, "test")
    data = collect(registry, iter(lines), STEP, now=NOW)
    got = report_numbers(data, registry)
    exp = run_oracle(lines, REGISTRY, NOW)

    # Header: lines, accepted, rejected by reason, persons.
    assert got["lines"] == len(lines)
    assert got["accepted"] == sum(exp.accepted.values())
    assert got["rejected"] == {r: exp.rejected[r] for r in ("malformed", "invalid", "unknown_checkpoint", "duplicate")}
    entered = sum(p for _, d, _, p in exp.crossings if d == "in")
    left = sum(p for _, d, _, p in exp.crossings if d == "out")
    assert got["persons"] == {"entered": entered, "left": left, "stayed": entered - left}

    # Per-day bars by citizenship: every accepted crossing on the UTC date of its time.
    daily: dict[str, dict[str, Counter]] = defaultdict(lambda: {"in": Counter(), "out": Counter()})
    for t, d, c, p in exp.crossings:
        daily[datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")][d][c] += p
    assert {row["day"]: {"in": row["in"], "out": row["out"]} for row in got["daily"]} == {
        day: {d: dict(v) for d, v in dirs.items()} for day, dirs in daily.items()
    }

    # The stayed curve: at each sample time, in - out of the crossings at or before it.
    times = sample_times(lines)
    assert got["sample_times"] == [stamp(t) for t in times]
    for c in {c for _, _, c, _ in exp.crossings}:
        want = [sum((p if d == "in" else -p) for ts, d, cc, p in exp.crossings if cc == c and ts <= t) for t in times]
        assert got["stayed"][c] == want, c

    # Waits at each step, for the queues the page plots.
    at = sampled_waits(lines, times)
    for queue, series in got["waits"].items():
        cid, d = queue.split("/")
        want = [None if math.isinf(at[t].wait[(cid, d, "all")]) else at[t].wait[(cid, d, "all")] for t in times]
        assert [None if w is None else round(w, 6) for w in series["estimated_seconds"]] == [
            None if w is None else round(w, 6) for w in want
        ], queue
        assert series["observed_seconds"] == [at[t].observed[(cid, d, "all")] for t in times], queue
    worst = {}
    for cid in ("aa", "bb"):
        for d in ("in", "out"):
            finite = [at[t].wait[(cid, d, "all")] for t in times if not math.isinf(at[t].wait[(cid, d, "all")])]
            peak = max(finite, default=0.0)
            if any(math.isinf(at[t].wait[(cid, d, "all")]) for t in times):
                peak = max(peak, registry[cid].critical_seconds)
            worst[(cid, d)] = peak
    for row in got["congested"]:
        assert math.isclose(row["worst_wait_seconds"], worst[(row["checkpoint"], row["direction"])])

    # Alert intervals, each alertname apart; QueueOverload's transitions are the oracle's.
    messages = pipeline_alerts(lines)
    overload = [(m["checkpoint_id"], m["direction"], m["severity"], m["status"]) for m in messages
                if m["alertname"] == "QueueOverload"]  # fmt: skip
    assert overload == [(cid, d, sev, status) for cid, d, _, sev, status, *_ in exp.transitions]
    want_intervals = sorted(intervals(messages, exp.last_ts), key=lambda i: (i[4], i[0], i[1], i[2], i[3]))
    assert [(a["alertname"], a["checkpoint"], a["direction"], a["severity"], a["start"], a["end"])
            for a in got["alerts"]] == [(*i[:4], stamp(i[4]), stamp(i[5])) for i in want_intervals]  # fmt: skip

    # The congestion table's hours, criticals and pages, from the QueueOverload intervals.
    for row in got["congested"]:
        queue = (row["checkpoint"], row["direction"])
        mine = [i for i in want_intervals if i[0] == "QueueOverload" and i[1:3] == queue]
        assert math.isclose(row["warning_seconds_firing"], sum(i[5] - i[4] for i in mine if i[3] == "warning"))
        critical = [i for i in mine if i[3] == "critical"]
        assert row["critical_fired"] == len(critical)
        assert row["pages"] == sum(1 + int((i[5] - i[4]) // PAGE) for i in critical)

    # The page carries the same numbers it draws.
    page = render(data, registry, "test")
    embedded = page.split('<script type="application/json" id="bordermon-report">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == json.loads(json.dumps(got))
    check_backtest(lines, messages, want_intervals)


def check_backtest(lines: list[bytes], messages: list[dict], want: list[tuple]) -> None:
    """Every cell of the backtest table: fired, hours, pages, lead warning -> critical, forecasts
    and their lead (each critical pairs with the warning firing then, and with the last forecast
    since the previous critical)."""
    _, (result,) = run_backtests(
        lambda _: [lines], [Backtest("t", parse_registry(REGISTRY, "test"), now=NOW, keep_alerts=True)]
    )
    assert [json.loads(m) for _, m in result.alerts] == messages
    queues = {(i[1], i[2]) for i in want}  # no lane groups here: each queue is the group `all`
    assert set(result.queues) == {(*q, "all") for q in queues}
    for q in queues:
        s = result.queues[(*q, "all")]
        mine = [i for i in want if (i[1], i[2]) == q]
        for sev in ("warning", "critical"):
            rows = [i for i in mine if i[0] == "QueueOverload" and i[3] == sev]
            assert s.fired[sev] == len(rows)
            assert math.isclose(s.seconds[sev], sum(i[5] - i[4] for i in rows), abs_tol=1e-6)
        assert s.pages == sum(1 + int((i[5] - i[4]) // PAGE) for i in mine if i[:1] == ("QueueOverload",)
                              and i[3] == "critical")  # fmt: skip
        assert s.forecasts == sum(1 for i in mine if i[0] == "QueueOverloadForecast")
        leads, forecast_leads, warned, forecast = [], [], None, None
        for m in (m for m in messages if (m["checkpoint_id"], m["direction"]) == q):
            fired, firing = iso(m["fired_at"]), m["status"] == "firing"
            if m["alertname"] == "QueueOverloadForecast":
                forecast = fired if firing else forecast  # the last one fired
            elif m["severity"] == "warning":
                warned = fired if firing else None
            elif firing:
                leads.append(fired - warned if warned is not None else 0.0)
                forecast_leads.append(fired - forecast if forecast is not None else 0.0)
                forecast = None  # one forecast warns of one critical
        assert s.leads == leads and s.forecast_leads == forecast_leads, q


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    start_second=st.integers(0, int(DAY) - 1),
    span=st.sampled_from([600.0, 3 * 3600.0, 20 * 3600.0, DAY, 2.5 * DAY, 4 * DAY]),
    events=st.integers(1, 220),
)
@example(seed=7, start_second=82_800, span=2.5 * DAY, events=220)  # starts an hour before midnight
def test_every_report_and_backtest_figure_equals_an_independent_computation(seed, start_second, span, events):
    start = datetime(2022, 9, 20, tzinfo=UTC).timestamp() + start_second
    check_report(make_log(seed, start, span, events))


def test_the_log_a_new_user_tried_ends_after_the_last_midnight_and_has_both_alert_types():
    """Issue 25's case: a 40-hour log from midnight to 16:00 the next day, busy enough that the
    forecast fires beside QueueOverload at the same severity."""
    start = datetime(2022, 9, 21, tzinfo=UTC).timestamp()
    lines = make_log(11, start, 40 * 3600.0, 1500)
    names = {m["alertname"] for m in pipeline_alerts(lines)}
    assert names == {"QueueOverload", "QueueOverloadForecast"}, names
    check_report(lines)
