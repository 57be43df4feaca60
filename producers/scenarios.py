"""Scenarios for `bordermon simulate`: what arrives where and when (the simulator decides the rest).

Daily Russian-citizen flows for `mobilization-2022` follow the official figures (see README):
21 Sep-4 Oct about 200,000 entered and 147,000 left, entries peaking near 30,000 a day;
3-4 Oct about 7,000-7,800 in and 10,500-11,000 out; by 29 Nov over 400,000 in and 320,000 out
(about 100,000 stayed). The anchor points below are daily persons; the simulator turns them
into parties arriving at checkpoints, and queues decide when they cross.

Ordinary traffic has a week and holidays (`ordinary_factor`): more on Fridays and weekends, less
mid-week, and a peak around public holidays. That is what a surge detector must not mistake for
a surge; `holiday` is Nauryz 2023, a large ordinary peak four weeks into a log. A day is labelled
a surge at a checkpoint and direction (`surge_labels`, the simulator's sidecar file) when the
scenario's script multiplies that stream's ordinary arrivals by at least `SURGE_LABEL_RATIO`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bordermon.registry import Registry

DAY = 86400.0

# Russian citizens per day (in = entering Kazakhstan), 21 Sep - 4 Oct 2022.
SURGE_IN = [8000, 13000, 18000, 24000, 30000, 27000, 21000, 16000, 12000, 9000, 7500, 7000, 7000, 7800]
SURGE_OUT = [6000, 7000, 8000, 9000, 10000, 11000, 12000, 12000, 12000, 12500, 12500, 12000, 11000, 10500]
SURGE_START = date(2022, 9, 21)
# Putin's address announcing the "partial mobilization" aired at 09:00 Moscow time on 21 Sep 2022:
# the surge starts then, not at midnight (the day's official figure arrives after it).
SURGE_ONSET = datetime(2022, 9, 21, 6, tzinfo=UTC)
CUMULATIVE_DATE = date(2022, 11, 29)
CUMULATIVE_IN = 420_000  # "over 400,000"
CUMULATIVE_OUT = 320_000
BASELINE_RU_PER_DAY = 3000.0
AIR_WEIGHT = 2.5  # ordinary Russian traffic each way before the mobilization

# Where Russian entries concentrate during the surge (the rest spread by capacity).
SURGE_IN_SHARES = {
    "syrym": 0.047,
    "taskala": 0.13,
    "kairak": 0.11,
    "zhana-zhol": 0.12,
    "karakoga": 0.10,
    "astana-airport": 0.07,
    "almaty-airport": 0.07,
    "kurmangazy": 0.06,
    "zhaisan": 0.06,
}
# Men, mostly young, during the mobilization surge; ordinary traffic otherwise.
SURGE_AGES = {"0-17": 0.03, "18-28": 0.55, "29-39": 0.30, "40-59": 0.10, "60+": 0.02}
ORDINARY_AGES = {"0-17": 0.15, "18-28": 0.22, "29-39": 0.25, "40-59": 0.26, "60+": 0.12}
SURGE_SEX = {"m": 0.86, "f": 0.13, "x": 0.01}
ORDINARY_SEX = {"m": 0.52, "f": 0.47, "x": 0.01}
OTHER_CITIZENSHIPS = {"KZ": 0.80, "UZ": 0.05, "KG": 0.04, "BY": 0.03, "AM": 0.03, "DE": 0.02, "TR": 0.03}


# Ordinary traffic by day of the week (Monday first, mean 1): Friday departures, weekend returns.
WEEKDAY_FACTORS = (0.95, 0.85, 0.85, 0.95, 1.2, 1.1, 1.1)
# Public holidays of Kazakhstan in the scenarios' years, as multiples of an ordinary day's traffic
# (travel builds up the day before and stays up while the holiday lasts).
HOLIDAY_PEAKS: dict[date, float] = {
    date(2022, 8, 29): 1.3,  # the day before Constitution Day
    date(2022, 8, 30): 1.5,  # Constitution Day
    date(2023, 3, 20): 1.5,  # Nauryz, 21-23 March (holidays 21-24 March 2023)
    date(2023, 3, 21): 2.0,
    date(2023, 3, 22): 2.2,
    date(2023, 3, 23): 2.1,
    date(2023, 3, 24): 1.8,
    date(2023, 3, 25): 1.4,
}
SURGE_LABEL_RATIO = 3.0  # a scripted day at this multiple of the stream's ordinary day is a surge (holidays reach 2.2)


def ordinary_factor(day: date) -> float:
    """Ordinary traffic on `day` as a multiple of the mean day."""
    return WEEKDAY_FACTORS[day.weekday()] * HOLIDAY_PEAKS.get(day, 1.0)


def _tail(first: float, total: float, days: int, floor: float) -> list[float]:
    """A decaying daily series from `first`, scaled so that it sums to `total` over `days`."""
    shape = [floor + (first - floor) * 0.93**i for i in range(days)]
    scale = total / sum(shape)
    return [v * scale for v in shape]


@dataclass(frozen=True)
class Scenario:
    name: str
    start: datetime
    default_days: int
    surge: bool = False
    # checkpoint, when all its lanes close, for how many seconds (a date, not an offset: a run
    # started weeks earlier reaches the same failure with history before it)
    lane_failure: tuple[str, datetime, float] | None = None
    ru_in: dict[date, float] = field(default_factory=dict)
    ru_out: dict[date, float] = field(default_factory=dict)
    surge_onset: datetime | None = None  # the moment the surge starts, on its first day

    def ru_per_day(self, direction: str, day: date) -> float:
        """Russian citizens crossing on `day`: the script's figure, else an ordinary day's."""
        series = self.ru_in if direction == "in" else self.ru_out
        scripted = series.get(day)
        return BASELINE_RU_PER_DAY * ordinary_factor(day) if scripted is None else scripted

    def in_surge(self, day: date) -> bool:
        return self.surge and SURGE_START <= day <= SURGE_START + timedelta(days=20)

    def surge_from(self, day: date) -> float:
        """The event time from which `day` is a surge day: -inf all day, +inf not at all, the
        onset's moment on its day."""
        if not self.in_surge(day):
            return math.inf
        if self.surge_onset is not None and day == self.surge_onset.date():
            return self.surge_onset.timestamp()
        return -math.inf

    def ru_shares(self, registry: Registry, cid: str, direction: str) -> tuple[float, float]:
        """Share of Russian traffic of one direction using checkpoint `cid`: (ordinary, surge days)."""
        capacity = capacities(registry, direction, AIR_WEIGHT)
        ordinary = capacity[cid] / sum(capacity.values())
        if direction != "in" or not self.surge:
            return ordinary, ordinary
        if cid in SURGE_IN_SHARES:
            return ordinary, SURGE_IN_SHARES[cid]
        rest = {c: v for c, v in capacity.items() if c not in SURGE_IN_SHARES}
        return ordinary, (1 - sum(SURGE_IN_SHARES.values())) * rest[cid] / sum(rest.values())


def capacities(registry: Registry, direction: str, air_weight: float = 1.0) -> dict[str, float]:
    """Parties per hour each checkpoint clears in one direction with its registry lanes;
    `air_weight` scales airports (they draw more Russian travellers per booth than land lanes)."""
    return {
        cid: cp.initial_lanes(direction) * cp.lane_capacity_per_hour * (air_weight if cp.mode == "air" else 1.0)
        for cid, cp in registry.checkpoints.items()
    }


def _mobilization() -> Scenario:
    ru_in: dict[date, float] = {}
    ru_out: dict[date, float] = {}
    for i, (a, b) in enumerate(zip(SURGE_IN, SURGE_OUT, strict=True)):
        ru_in[SURGE_START + timedelta(days=i)] = a
        ru_out[SURGE_START + timedelta(days=i)] = b
    tail_start = SURGE_START + timedelta(days=len(SURGE_IN))
    tail_days = (CUMULATIVE_DATE - tail_start).days + 1
    for series, total, first, floor in (
        (ru_in, CUMULATIVE_IN - sum(SURGE_IN), SURGE_IN[-1], 2500.0),
        (ru_out, CUMULATIVE_OUT - sum(SURGE_OUT), SURGE_OUT[-1], 2200.0),
    ):
        for i, v in enumerate(_tail(first, total, tail_days, floor)):
            series[tail_start + timedelta(days=i)] = v
        series[CUMULATIVE_DATE + timedelta(days=1)] = floor
        series[CUMULATIVE_DATE + timedelta(days=2)] = floor
    return Scenario(
        "mobilization-2022",
        datetime(2022, 9, 14, tzinfo=UTC),
        default_days=78,  # 14 Sep - 30 Nov 2022
        surge=True,
        ru_in=ru_in,
        ru_out=ru_out,
        surge_onset=SURGE_ONSET,
    )


SCENARIOS: dict[str, Scenario] = {
    "baseline": Scenario("baseline", datetime(2022, 8, 1, tzinfo=UTC), default_days=7),
    "mobilization-2022": _mobilization(),
    "lane-failure": Scenario(
        "lane-failure",
        datetime(2022, 8, 1, tzinfo=UTC),
        default_days=2,
        lane_failure=("zhana-zhol", datetime(2022, 8, 2, 6, tzinfo=UTC), 2 * 3600.0),
    ),
    "holiday": Scenario("holiday", datetime(2023, 2, 20, tzinfo=UTC), default_days=35),  # Nauryz in week 5
}
