"""Prometheus exposition of the pipeline state, computed at scrape time from owned partitions.

Nothing is updated per event: a scrape walks the checkpoint states of the partitions this
worker owns, so series for a lost partition disappear and `sum by` over workers is global.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from bordermon import metrics as catalog
from bordermon.events import DIRECTIONS, EVENT_TYPES, REJECT_REASONS
from bordermon.metrics import Metric
from bordermon.partitioning import PARTITIONERS
from streams.domain.alerts import SEVERITIES
from streams.domain.processor import Processor
from streams.domain.state import CheckpointState


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


class TextFamily:
    """One metric family written straight to the text exposition format, as `generate_latest`
    writes it: labels in name order, values as `floatToGoString` prints them."""

    def __init__(self, metric: Metric) -> None:
        self.series = metric.series
        order = sorted(range(len(metric.labels)), key=metric.labels.__getitem__)
        self.pieces = [(f'{metric.labels[i]}="', i) for i in order]
        help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines = [f"# HELP {self.series} {help_text}\n# TYPE {self.series} {metric.kind}\n"]

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        if not self.pieces:
            self.lines.append(f"{self.series} {number_text(value)}\n")
            return
        body = '",'.join([piece + label_text(labels[i]) for piece, i in self.pieces])
        self.add_labelled(body + '"', labels, value)

    def add_labelled(self, body: str, labels: Sequence[str], value: float) -> None:
        """`add_metric` with the label pairs already written (`body`, in label-name order): the
        walk writes a checkpoint's and a direction's pairs once for all their families."""
        self.lines.append(f"{self.series}{{{body}}} {number_text(value)}\n")

    def text(self) -> str:
        return "".join(self.lines)

    def part(self) -> TextFamily:
        """A family with this one's name and labels, no header and no samples: one checkpoint's
        samples are written into parts, which a later scrape reuses while it has not changed."""
        part = object.__new__(TextFamily)
        part.series, part.pieces, part.lines = self.series, self.pieces, []
        return part


class CollectedFamily:
    """A prometheus_client family in the walk that `TextFamily` takes part in (`collect`)."""

    def __init__(self, metric: Metric) -> None:
        self.family = family(metric)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.family.add_metric(labels, value)

    def add_labelled(self, body: str, labels: Sequence[str], value: float) -> None:
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

Sink = TextFamily | CollectedFamily


def checkpoint_samples(cs: CheckpointState, sinks: Sequence[Sink]) -> None:
    """Every sample of one checkpoint, into its families (`sinks`, in `_PER_CHECKPOINT` order).
    Label pairs are written in label-name order, as the exposition format has them; the
    byte-for-byte test against generate_latest holds this to it."""
    (persons, queue, wait, observed, expected, clearance, forecast_firing, lanes, firing, forecast, arrivals,
     baseline, surging, needed, net, last, threshold, events, off_partition, info) = sinks  # fmt: skip
    cid, now = cs.cp.id, cs.last_ts
    c = f'checkpoint="{label_text(cid)}"'
    for d in DIRECTIONS:
        cd, labels = f'{c},direction="{d}"', [cid, d]
        persons.add_labelled(cd, labels, cs.persons[d])
        arrivals.add_labelled(cd, labels, cs.arrivals_per_hour(d))
        surge = cs.surges[d]
        typical = surge.baseline(now) if now is not None else None
        if typical is not None:  # absent while too little history is known
            baseline.add_labelled(cd, labels, typical)
        surging.add_labelled(cd, labels, 1.0 if surge.alert.firing else 0.0)
        for group, q in cs.queues[d].items():
            cdg, queue_labels = f'{cd},lane_group="{label_text(group)}"', [cid, d, group]
            queue.add_labelled(cdg, queue_labels, q.length)
            wait.add_labelled(cdg, queue_labels, q.wait_seconds())
            observed.add_labelled(cdg, queue_labels, q.observed_wait)
            expected.add_labelled(cdg, queue_labels, q.expected_wait_seconds(now))
            clearance.add_labelled(cdg, queue_labels, q.clearance_per_lane(now) * q.lanes)
            forecast_firing.add_labelled(cdg, queue_labels, 1.0 if q.forecast.firing else 0.0)
            lanes.add_labelled(cdg, queue_labels, q.lanes)
            for sev in SEVERITIES:
                cdgs = f'{cdg},severity="{sev}"'
                firing.add_labelled(cdgs, [cid, d, group, sev], 1.0 if q.alerts[sev].firing else 0.0)
                forecast.add_labelled(cdgs, [cid, d, group, sev], q.forecast_seconds(sev, now))
            needed.add_labelled(cdg, queue_labels, q.advice(now)[1])
    for name, value in cs.net_flows().items():
        net.add_labelled(f'{c},window="{name}"', [cid, name], value)
    if cs.last_ts is not None:
        last.add_labelled(c, [cid], cs.last_ts)
    for g in cs.cp.lane_groups:
        cg = f'{c},lane_group="{label_text(g.id)}"'
        for sev in SEVERITIES:
            threshold.add_labelled(f'{cg},severity="{sev}"', [cid, g.id, sev], g.threshold_seconds(sev))
    events.add_labelled(c, [cid], sum(cs.accepted.values()))
    for partitioner in PARTITIONERS:
        if partitioner in cs.off_partition:
            off_partition.add_metric([cid, partitioner], cs.off_partition[partitioner])
    cp = cs.cp
    info.add_metric([cid, cp.name, cp.region, cp.mode, str(cp.lat), str(cp.lon)], 1.0)


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
        # A checkpoint's text from the last scrape, with the state version it was written from:
        # between two scrapes most of 2,400 checkpoints see no event, and writing one costs
        # ~40 µs (its estimates and forecasts are computed for the samples).
        self._texts: dict[str, tuple[tuple[int, int], tuple[bytes, ...]]] = {}
        self._idle: dict[str, CheckpointState] = {}  # checkpoints with no events yet, one state each

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
        self._fill(families, lambda cs: checkpoint_samples(cs, sinks))
        yield from (f.family for f in families.values())

    def render(self) -> bytes:
        """The same families as `collect`, as Prometheus text, byte for byte what
        `generate_latest` prints for them (`pieces`, joined)."""
        return b"".join(self.pieces())

    def pieces(self) -> list[bytes]:
        """`render` in pieces, to be sent as they are: a family's header, then one piece per
        checkpoint, which a later scrape reuses while that checkpoint's state has not changed.
        Joined, the text is 20 MB at 2,400 checkpoints with three lane groups; each copy of that
        size lands in freshly mapped memory and cost ~60 ms of page faults in a worker."""
        families = {m: TextFamily(m) for m in catalog.STATE_METRICS}
        per_checkpoint: list[list[bytes]] = [[] for _ in _PER_CHECKPOINT]
        scratch = [families[m].part() for m in _PER_CHECKPOINT]  # one checkpoint's samples at a time
        written = [part.lines for part in scratch]
        previous, texts = self._texts, {}
        join, append, clear = "".join, list.append, list.clear

        def reuse(cs: CheckpointState) -> None:
            # Per checkpoint, one piece per family (b"" for none), moved with `map`: the loops
            # run in C (a Python loop over the families was a quarter of a scrape).
            cid, version = cs.cp.id, cs.version()
            cached = previous.get(cid)
            if cached is None or cached[0] != version:
                checkpoint_samples(cs, scratch)
                cached = (version, tuple([join(lines).encode() for lines in written]))
                deque(map(clear, written), maxlen=0)
            texts[cid] = cached
            deque(map(append, per_checkpoint, cached[1]), maxlen=0)

        self._fill(families, reuse)
        self._texts = texts
        by_family = dict(zip(_PER_CHECKPOINT, per_checkpoint, strict=True))
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
        by_citizenship: dict[str, int] = {}
        by_cit_dir: dict[tuple[str, str], int] = {}
        for cs in self.owned_checkpoints(owned):
            for t, n in cs.accepted.items():
                accepted_sum[t] += n
            for c, n in cs.net_by_citizenship().items():
                by_citizenship[c] = by_citizenship.get(c, 0) + n
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
        cumulative = families[catalog.NET_FLOW_CUMULATIVE]
        for c, n in sorted(by_citizenship.items()):
            cumulative.add_metric([c], n)
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
