"""Prometheus exposition of the pipeline state, computed at scrape time from owned partitions.

Nothing is updated per event: a scrape walks the checkpoint states of the partitions this
worker owns, so series for a lost partition disappear and `sum by` over workers is global.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import cast

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from bordermon import metrics as catalog
from bordermon.events import DIRECTIONS, EVENT_TYPES, REJECT_REASONS
from bordermon.metrics import Metric
from bordermon.partitioning import PARTITIONERS
from bordermon.registry import Checkpoint
from streams.domain.alerts import SEVERITIES
from streams.domain.processor import Processor
from streams.domain.state import QUEUE_SAMPLES, CheckpointState
from streams.domain.windows import WINDOWS


def counter(metric: Metric, registry: CollectorRegistry) -> Counter:
    """A worker's own counter, updated as it works (unlike the families computed at scrape time)."""
    assert metric.kind == "counter", metric.name
    return Counter(metric.name, metric.help, metric.labels, registry=registry)


def gauge(metric: Metric, registry: CollectorRegistry) -> Gauge:
    assert metric.kind == "gauge", metric.name
    return Gauge(metric.name, metric.help, metric.labels, registry=registry)


def histogram(metric: Metric, registry: CollectorRegistry) -> Histogram:
    assert metric.kind == "histogram", metric.name
    return Histogram(metric.name, metric.help, metric.labels, buckets=metric.buckets, registry=registry)


def family(metric: Metric) -> CounterMetricFamily | GaugeMetricFamily:
    kind = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}[metric.kind]
    return kind(metric.name, metric.help, labels=list(metric.labels))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


# Label values and numbers repeat across checkpoints and scrapes: each is formatted once (bounded).
@functools.lru_cache(maxsize=100_000)
def label_text(value: str) -> str:
    """A label value escaped for the text exposition format."""
    return _escape(value)


@functools.lru_cache(maxsize=10_000)
def number_text(value: float) -> str:
    """A sample value as `generate_latest` prints it."""
    return floatToGoString(value)


class NumberBytes(dict[float, bytes]):
    """`number_text`, encoded, remembered for at most `limit` values (emptied when full). A dict
    whose `__getitem__` is mapped over a family's values: half the time of an `lru_cache`'s
    call, for the 216,000 values of a first scrape at 2,400 checkpoints with three lane groups."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, value: float) -> bytes:
        if len(self) >= self.limit:
            self.clear()
        text = self[value] = number_text(value).encode()
        return text


number_bytes = NumberBytes(10_000)


class TextFamily:
    """One metric family written straight to the text exposition format, as `generate_latest`
    writes it: labels in name order, values as `floatToGoString` prints them."""

    def __init__(self, metric: Metric) -> None:
        self.series = metric.series
        order = sorted(range(len(metric.labels)), key=metric.labels.__getitem__)
        self.pieces = [(f'{metric.labels[i]}="', i) for i in order]
        help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
        self.header = f"# HELP {self.series} {help_text}\n# TYPE {self.series} {metric.kind}\n"
        self.lines = [self.header]
        self.series_bytes = self.series.encode()
        self.between = b"\n" + self.series_bytes  # what separates two samples' label sets and values

    def body(self, labels: Sequence[str]) -> str:
        """A sample's label pairs as the text has them, `{...} `; just the space for a family without labels."""
        if not self.pieces:
            return " "
        return "{" + '",'.join([piece + label_text(labels[i]) for piece, i in self.pieces]) + '"} '

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.lines.append(f"{self.series}{self.body(labels)}{number_text(value)}\n")

    def samples(self, bodies: Sequence[bytes], values: Iterable[float]) -> bytes:
        """Samples with their label pairs already written and encoded (`bodies`, as `body`
        writes them): one checkpoint writes each label set once for all its families, and the
        lines are joined in C (a call per sample was a fifth of a scrape). Bytes from the start
        and one join: a line joined from its label set and value first, and the text encoded
        after, were two more copies of a 20 MB scrape, each into freshly mapped memory."""
        if not bodies:
            return b""
        parts = [self.between] * (3 * len(bodies))
        parts[0] = self.series_bytes
        parts[1::3] = bodies
        parts[2::3] = map(number_bytes.__getitem__, values)
        parts.append(b"\n")
        return b"".join(parts)

    def text(self) -> str:
        return "".join(self.lines)


class CollectedFamily:
    """A prometheus_client family filled from the same walk as the text (`collect`)."""

    def __init__(self, metric: Metric) -> None:
        self.family = family(metric)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.family.add_metric(labels, value)


# The families with one or more samples per checkpoint, in the order a scrape writes them.
_PER_CHECKPOINT = (
    catalog.CROSSING_PERSONS,
    catalog.QUEUE_LENGTH,
    catalog.WAIT_ESTIMATE,
    catalog.WAIT_OBSERVED,
    catalog.WAIT_EXPECTED,
    catalog.CLEARANCE_RATE,
    catalog.FORECAST_FIRING,
    catalog.LANES_OPEN,
    catalog.ALERTS_FIRING,
    catalog.OVERLOAD_FORECAST,
    catalog.ARRIVALS_RATE,
    catalog.ARRIVALS_BASELINE,
    catalog.SURGE_FIRING,
    catalog.LANES_NEEDED,
    catalog.NET_FLOW,
    catalog.LAST_EVENT,
    catalog.WAIT_THRESHOLD,
    catalog.CHECKPOINT_EVENTS,
    catalog.EVENTS_OFF_PARTITION,
    catalog.CHECKPOINT_INFO,
)
_FAMILIES = len(_PER_CHECKPOINT)
_WRITERS = [TextFamily(m) for m in _PER_CHECKPOINT]
# Each family's place in `_PER_CHECKPOINT` (the walk indexes by place: a `Metric` hashes in Python).
_PLACE = {m: k for k, m in enumerate(_PER_CHECKPOINT)}
_PERSONS = _PLACE[catalog.CROSSING_PERSONS]
_ARRIVALS_RATE = _PLACE[catalog.ARRIVALS_RATE]
_BASELINE = _PLACE[catalog.ARRIVALS_BASELINE]
_SURGE = _PLACE[catalog.SURGE_FIRING]
_NET = _PLACE[catalog.NET_FLOW]
_LAST = _PLACE[catalog.LAST_EVENT]
_THRESHOLD = _PLACE[catalog.WAIT_THRESHOLD]
_EVENTS = _PLACE[catalog.CHECKPOINT_EVENTS]
_OFF = _PLACE[catalog.EVENTS_OFF_PARTITION]
_INFO = _PLACE[catalog.CHECKPOINT_INFO]
# Each queue family's place and its column of `QueueState.samples`.
_QUEUE_PLACES = [
    (_PLACE[m], QUEUE_SAMPLES.index(name))
    for m, name in (
        (catalog.QUEUE_LENGTH, "length"),
        (catalog.WAIT_ESTIMATE, "wait"),
        (catalog.WAIT_OBSERVED, "observed_wait"),
        (catalog.WAIT_EXPECTED, "expected_wait"),
        (catalog.CLEARANCE_RATE, "clearance"),
        (catalog.FORECAST_FIRING, "forecast_firing"),
        (catalog.LANES_OPEN, "lanes"),
        (catalog.LANES_NEEDED, "lanes_needed"),
    )
]
# The families with a sample per queue and severity: their columns, severity by severity.
_SEVERITY_PLACES = [
    (_PLACE[catalog.ALERTS_FIRING], [QUEUE_SAMPLES.index(f"{s}_firing") for s in SEVERITIES]),
    (_PLACE[catalog.OVERLOAD_FORECAST], [QUEUE_SAMPLES.index(f"{s}_forecast") for s in SEVERITIES]),
]
_ARRIVALS = QUEUE_SAMPLES.index("arrivals")
_SEVERITY_BODIES = [f',severity="{s}"}} ' for s in SEVERITIES]
# Checkpoints written together and reused together (`StateCollector.pieces`): enough that the
# work per family is shared by many, few enough that one changed checkpoint rewrites little.
BLOCK_CHECKPOINTS = 16
# The families whose series may be absent (their values hold None then).
_OPTIONAL = [_BASELINE, _LAST]
assert len({_PERSONS, _ARRIVALS_RATE, _BASELINE, _SURGE, _NET, _LAST, _THRESHOLD, _EVENTS, _OFF, _INFO}
           | {p for p, _ in _QUEUE_PLACES} | {p for p, _ in _SEVERITY_PLACES}) == _FAMILIES  # fmt: skip


class RegistryText:
    """What a checkpoint's samples take from its registry entry alone, written once as text:
    its label sets (a direction's, a queue's, a queue and severity's, a window's), its
    thresholds and its info. The same at every scrape: writing them at each one was a sixth of
    a first scrape at 2,400 checkpoints with three lane groups, and the info's six labels 4%."""

    __slots__ = ("by_c", "by_d", "by_q", "by_qs", "checkpoint", "info", "info_body", "net_bodies",
                 "threshold_bodies", "thresholds")  # fmt: skip

    def __init__(self, cp: Checkpoint) -> None:
        self.checkpoint = cp
        self.info = (cp.id, cp.name, cp.region, cp.mode, str(cp.lat), str(cp.lon))
        self.info_body = _WRITERS[_INFO].body(self.info).encode()
        c = f'{{checkpoint="{label_text(cp.id)}"'
        groups = [f',lane_group="{label_text(g.id)}"' for g in cp.lane_groups]
        self.by_c = (c + "} ").encode()
        self.by_d = [f'{c},direction="{d}"}} '.encode() for d in DIRECTIONS]
        # In the order `CheckpointState.queues` holds them: direction, then the registry's groups.
        queues = [f'{c},direction="{d}"{g}' for d in DIRECTIONS for g in groups]
        self.by_q = [(q + "} ").encode() for q in queues]
        self.by_qs = [(q + body).encode() for q in queues for body in _SEVERITY_BODIES]
        self.net_bodies = [f'{c},window="{name}"}} '.encode() for name in WINDOWS]
        self.threshold_bodies = [(c + g + body).encode() for g in groups for body in _SEVERITY_BODIES]
        self.thresholds = [g.threshold_seconds(s) for g in cp.lane_groups for s in SEVERITIES]


_REGISTRY_TEXTS: dict[str, RegistryText] = {}


def registry_text(cp: Checkpoint) -> RegistryText:
    """`RegistryText` of a checkpoint, written once per registry entry (one per checkpoint id)."""
    text = _REGISTRY_TEXTS.get(cp.id)
    if text is None or text.checkpoint is not cp:
        text = _REGISTRY_TEXTS[cp.id] = RegistryText(cp)
    return text


class Samples:
    """The samples of some checkpoints, gathered family by family to be written at once.

    A checkpoint's samples share few label sets (a direction's, a queue's, a queue and
    severity's): each is written once as text (`TextFamily.body`) for all its families, and
    label values are kept only when asked for (`collect`). A family's lines are then joined in C
    for all the checkpoints together; a call per sample, or per checkpoint and family, was a
    fifth of a scrape. Label pairs are in label-name order, as the exposition format has them;
    the byte-for-byte test against generate_latest holds this to it."""

    __slots__ = ("bodies", "by_c", "by_d", "by_q", "by_qs", "labelled", "labels", "rows", "values")

    def __init__(self, labelled: bool = False) -> None:
        self.labelled = labelled
        self.by_c: list[bytes] = []  # a checkpoint's label pairs
        self.by_d: list[bytes] = []  # ... and a direction's
        self.by_q: list[bytes] = []  # ... and a lane group's: a queue's
        self.by_qs: list[bytes] = []  # ... and a severity's
        self.rows: list[tuple[float, ...]] = []  # `QueueState.samples`, in `by_q` order
        # The other families' label pairs (where not one of the above) and values, by place.
        self.bodies: list[list[bytes]] = [[] for _ in range(_FAMILIES)]
        self.values: list[list[float | None]] = [[] for _ in range(_FAMILIES)]
        self.labels: list[list[tuple[str, ...]]] = [[] for _ in range(_FAMILIES)]

    def add(self, cs: CheckpointState) -> None:
        """One checkpoint's samples."""
        cid, now, cp = cs.cp.id, cs.last_ts, cs.cp
        values, bodies, rows = self.values, self.bodies, self.rows
        text = registry_text(cp)
        self.by_c.append(text.by_c)
        self.by_d += text.by_d
        self.by_q += text.by_q
        self.by_qs += text.by_qs
        persons, arrivals = values[_PERSONS].append, values[_ARRIVALS_RATE].append
        baselines, surging = values[_BASELINE].append, values[_SURGE].append
        for d in DIRECTIONS:
            persons(cs.persons[d])
            surge = cs.surges[d]
            baselines(surge.baseline(now) if now is not None else None)  # None: too little known
            surging(1.0 if surge.alert.firing else 0.0)
            arriving = 0.0  # summed in order, as `CheckpointState.arrivals_per_hour` does
            for q in cs.queues[d].values():
                row = q.samples(now)
                rows.append(row)
                arriving += row[_ARRIVALS]
            arrivals(arriving if now is not None else 0.0)
        flows = cs.net_flows()
        bodies[_NET] += text.net_bodies
        values[_NET] += flows.values()
        values[_LAST].append(now)
        bodies[_THRESHOLD] += text.threshold_bodies
        values[_THRESHOLD] += text.thresholds
        values[_EVENTS].append(sum(cs.accepted.values()))
        off = [p for p in PARTITIONERS if p in cs.off_partition] if cs.off_partition else []
        if off:
            bodies[_OFF] += [_WRITERS[_OFF].body((cid, p)).encode() for p in off]
            values[_OFF] += [cs.off_partition[p] for p in off]
        bodies[_INFO].append(text.info_body)
        values[_INFO].append(1.0)
        if self.labelled:
            labels = self.labels
            for k in (_PERSONS, _ARRIVALS_RATE, _BASELINE, _SURGE):
                labels[k] += [(cid, d) for d in DIRECTIONS]
            queues = [(cid, d, g) for d in DIRECTIONS for g in cs.queues[d]]
            for k, _ in _QUEUE_PLACES:
                labels[k] += queues
            for k, _ in _SEVERITY_PLACES:
                labels[k] += [(*q, s) for q in queues for s in SEVERITIES]
            labels[_NET] += [(cid, name) for name in flows]
            labels[_LAST].append((cid,))
            labels[_THRESHOLD] += [(cid, g.id, s) for g in cp.lane_groups for s in SEVERITIES]
            labels[_EVENTS].append((cid,))
            labels[_OFF] += [(cid, p) for p in off]
            labels[_INFO].append(text.info)

    def families(self) -> list[tuple[Sequence[bytes], Sequence[Sequence[str]], Sequence[float | None]]]:
        """(label pairs, label values, values) of each family, in `_PER_CHECKPOINT` order."""
        bodies, values, labels = list(self.bodies), list(self.values), self.labels
        for k in (_PERSONS, _ARRIVALS_RATE, _BASELINE, _SURGE):
            bodies[k] = self.by_d
        bodies[_LAST] = bodies[_EVENTS] = self.by_c
        columns = list(zip(*self.rows, strict=True)) or [()] * len(QUEUE_SAMPLES)
        for k, column in _QUEUE_PLACES:
            bodies[k], values[k] = self.by_q, list(columns[column])
        for k, by_severity in _SEVERITY_PLACES:
            bodies[k] = self.by_qs
            values[k] = [*chain.from_iterable(zip(*[columns[c] for c in by_severity], strict=True))]
        return list(zip(bodies, labels, values, strict=True))

    def texts(self) -> list[bytes]:
        """One piece of text per family in `_PER_CHECKPOINT` order (b"" for none)."""
        out = []
        for k, (bodies, _, values) in enumerate(self.families()):
            if k in _OPTIONAL:
                kept = [(body, v) for body, v in zip(bodies, values, strict=True) if v is not None]
                bodies, values = [body for body, _ in kept], [v for _, v in kept]
            out.append(_WRITERS[k].samples(bodies, cast(Sequence[float], values)))
        return out

    def samples(self) -> Iterator[tuple[int, Sequence[str], float]]:
        """(family place, label values, value) of every sample present (`labelled` only)."""
        assert self.labelled
        for k, (_, labels, values) in enumerate(self.families()):
            for label_values, value in zip(labels, values, strict=True):
                if value is not None:
                    yield k, label_values, value


Sink = TextFamily | CollectedFamily
# A block of checkpoints' scrape text: (checkpoint ids and state versions it was written from, its text per family).
Block = tuple[list[tuple[str, tuple[int, int]]], list[bytes]]


class StateCollector(Collector):
    def __init__(
        self,
        processor: Processor,
        owned_partitions: Callable[[], set[int]],
        highwater: Callable[[int], int | None] | None = None,
    ) -> None:
        self.processor = processor
        self.owned_partitions = owned_partitions
        self.highwater = highwater
        # The text of each block of checkpoints from the last scrape, with the checkpoints and
        # state versions it was written from: between two scrapes most of 2,400 checkpoints may
        # see no event, and writing one costs ~40 µs (its estimates and forecasts are computed).
        self._blocks: list[Block] = []
        self._idle: dict[str, CheckpointState] = {}  # checkpoints with no events yet, one state each
        for cp in processor.registry.checkpoints.values():  # now, not in the first scrape (12 ms at 2,400)
            registry_text(cp)

    def owned_checkpoints(self, owned: set[int]) -> Iterator[CheckpointState]:
        """The checkpoints this worker exports: those of the partitions it owns, and the idle ones
        whose home partition it owns (`/metrics` and `/api/v1/waits` alike)."""
        proc = self.processor
        active: set[str] = set()
        for p in owned:
            ps = proc.state.get(p)
            if ps is None:
                continue
            for cs in ps.checkpoints.values():
                active.add(cs.cp.id)
                yield cs
        # Checkpoints with no events yet are exported by the owner of their canonical partition.
        idle = self._idle
        for cid in active & idle.keys():
            del idle[cid]  # it has events now
        for cid, cp in proc.registry.checkpoints.items():
            if cid not in active and proc.home(cid) in owned:
                placeholder = idle.get(cid)
                if placeholder is None:
                    placeholder = idle[cid] = CheckpointState(cp)
                yield placeholder

    def collect(self) -> Iterator[Family]:
        families = {m: CollectedFamily(m) for m in catalog.STATE_METRICS}
        sinks = [families[m] for m in _PER_CHECKPOINT]

        gathered = Samples(labelled=True)
        self._fill(families, gathered.add)
        for k, labels, value in gathered.samples():
            sinks[k].add_metric(labels, value)
        yield from (f.family for f in families.values())

    def render(self) -> bytes:
        """The same families as `collect`, as Prometheus text, byte for byte what
        `generate_latest` prints for them (`pieces`, joined)."""
        return b"".join(self.pieces())

    def pieces(self) -> list[bytes]:
        """`render` in pieces, to be sent as they are: a family's header, then one piece per
        block of checkpoints, which a later scrape reuses while none of them has changed.
        Joined, the text is 20 MB at 2,400 checkpoints with three lane groups; each copy of that
        size lands in freshly mapped memory and cost ~60 ms of page faults in a worker. A block
        rewritten lets go of its old text first, so the new reuses that memory: a scrape that
        rewrites every block then holds one text, not two, and touches no fresh pages."""
        families = {m: TextFamily(m) for m in catalog.STATE_METRICS}
        per_block: list[list[bytes]] = [[] for _ in _PER_CHECKPOINT]
        previous: list[Block | None] = [*self._blocks]
        blocks: list[Block] = []
        self._blocks = blocks  # nothing else holds the old texts now: each is freed when replaced
        block: list[CheckpointState] = []
        key: list[tuple[str, tuple[int, int]]] = []

        def written() -> None:
            # A block's text is reused while it holds the same checkpoints at the same versions.
            k = len(blocks)
            cached = previous[k] if k < len(previous) else None
            if cached is None or cached[0] != key:
                if cached is not None:
                    previous[k] = cached = None  # its memory, for the text written next
                gathered = Samples()
                deque(map(gathered.add, block), maxlen=0)
                cached = (key.copy(), gathered.texts())
            blocks.append(cached)
            deque(map(list.append, per_block, cached[1]), maxlen=0)
            block.clear()
            key.clear()

        def reuse(cs: CheckpointState) -> None:
            block.append(cs)
            key.append((cs.cp.id, cs.version()))
            if len(block) == BLOCK_CHECKPOINTS:
                written()

        self._fill(families, reuse)
        if block:
            written()
        by_family = dict(zip(_PER_CHECKPOINT, per_block, strict=True))
        out: list[bytes] = []
        for metric, f in families.items():
            out.append(f.text().encode())
            out += by_family.get(metric, ())
        return out

    def _fill(self, families: Mapping[Metric, Sink], samples: Callable[[CheckpointState], None]) -> None:
        """Walk the owned state once: each checkpoint's samples through `samples`, then the
        families summed over checkpoints and partitions."""
        owned = self.owned_partitions()
        accepted_sum = dict.fromkeys(EVENT_TYPES, 0)
        by_cit_dir: dict[tuple[str, str], int] = {}
        for cs in self.owned_checkpoints(owned):
            for t, n in cs.accepted.items():
                accepted_sum[t] += n
            for d, tally in cs.citizenship_persons.items():
                for c, n in tally.items():
                    by_cit_dir[(c, d)] = by_cit_dir.get((c, d), 0) + n
            samples(cs)
        accepted = families[catalog.EVENTS_ACCEPTED]
        for t, n in accepted_sum.items():
            accepted.add_metric([t], n)
        rejected_sum = dict.fromkeys(REJECT_REASONS, 0)
        for p in owned:
            ps = self.processor.state.get(p)
            if ps is not None:
                for r, n in ps.rejected.items():
                    rejected_sum[r] += n
        rejected = families[catalog.EVENTS_REJECTED]
        for r, n in rejected_sum.items():
            rejected.add_metric([r], n)
        # Net persons per citizenship from the sums above (in minus out), not from a net per
        # checkpoint: one dict built for each of 2,400 checkpoints was 4 ms of a first scrape.
        cumulative = families[catalog.NET_FLOW_CUMULATIVE]
        entering, leaving = DIRECTIONS
        for c in sorted({c for c, _ in by_cit_dir}):
            cumulative.add_metric([c], by_cit_dir.get((c, entering), 0) - by_cit_dir.get((c, leaving), 0))
        by_citizenship_dir = families[catalog.CROSSING_PERSONS_BY_CITIZENSHIP]
        for (c, d), n in sorted(by_cit_dir.items()):
            by_citizenship_dir.add_metric([c, d], n)
        if self.highwater is not None:
            lag = families[catalog.CONSUMER_LAG]
            for p in sorted(owned):
                ps = self.processor.state.get(p)
                end = self.highwater(p)
                if ps is not None and end is not None:
                    lag.add_metric([str(p)], max(0, end - (ps.applied + 1)))
