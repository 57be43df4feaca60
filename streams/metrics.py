"""Prometheus exposition of the pipeline state, computed at scrape time from owned partitions.

Nothing is updated per event: a scrape walks the checkpoint states of the partitions this
worker owns, so series for a lost partition disappear and `sum by` over workers is global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bordermon.events import DIRECTIONS, EVENT_TYPES, REJECT_REASONS
from bordermon.partitioning import PARTITIONERS
from streams.alerts import SEVERITIES
from streams.processor import Processor
from streams.state import CheckpointState


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

    def _owned_checkpoints(self, owned: set[int]) -> Iterator[CheckpointState]:
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
        for cid, cp in proc.registry.checkpoints.items():
            if cid not in active and proc.home(cid) in owned:
                yield CheckpointState(cp)

    def collect(self) -> Iterator[Metric]:
        owned = self.owned_partitions()
        accepted = CounterMetricFamily("border_events_accepted", "Accepted events", labels=["type"])
        rejected = CounterMetricFamily("border_events_rejected", "Rejected messages", labels=["reason"])
        persons = CounterMetricFamily("border_crossing_persons", "Persons cleared", labels=["checkpoint", "direction"])
        net = GaugeMetricFamily(
            "border_net_flow_persons",
            "Persons in minus out over (T_c - window, T_c]",
            labels=["checkpoint", "window"],
        )
        cumulative = GaugeMetricFamily(
            "border_net_flow_cumulative_persons",
            "Persons in minus out since the worker's state began",
            labels=["citizenship"],
        )
        queue = GaugeMetricFamily("border_queue_length", "Parties waiting", labels=["checkpoint", "direction"])
        wait = GaugeMetricFamily(
            "border_queue_wait_estimate_seconds", "Estimated wait", labels=["checkpoint", "direction"]
        )
        observed = GaugeMetricFamily(
            "border_queue_wait_observed_seconds",
            "Wait of the latest party cleared from a non-empty queue (first in, first out)",
            labels=["checkpoint", "direction"],
        )
        expected = GaugeMetricFamily(
            "border_queue_wait_expected_seconds",
            "Expected wait for a party joining now: the queue over the measured clearance rate "
            "(nominal capacity until enough crossings were seen)",
            labels=["checkpoint", "direction"],
        )
        clearance = GaugeMetricFamily(
            "border_queue_clearance_rate_per_hour",
            "Parties the open lanes clear per hour, measured over the last hour while the queue was busy",
            labels=["checkpoint", "direction"],
        )
        forecast = GaugeMetricFamily(
            "border_queue_overload_forecast_seconds",
            "Event time until the wait estimate reaches the threshold at current arrival and clearance rates "
            "(+Inf when the queue is not growing)",
            labels=["checkpoint", "direction", "severity"],
        )
        forecast_firing = GaugeMetricFamily(
            "border_forecast_alerts_firing",
            "1 while QueueOverloadForecast fires",
            labels=["checkpoint", "direction"],
        )
        off_partition = CounterMetricFamily(
            "border_events_off_partition",
            "Events that arrived off their checkpoint's home (murmur2) partition and were re-routed, "
            "by the producer partitioner that most likely placed them",
            labels=["checkpoint", "partitioner"],
        )
        lanes = GaugeMetricFamily("border_lanes_open", "Lanes open", labels=["checkpoint", "direction"])
        firing = GaugeMetricFamily(
            "border_alerts_firing",
            "1 while QueueOverload fires",
            labels=["checkpoint", "direction", "severity"],
        )
        last = GaugeMetricFamily(
            "border_last_event_timestamp_seconds", "Latest accepted event time", labels=["checkpoint"]
        )
        threshold = GaugeMetricFamily(
            "border_wait_threshold_seconds", "QueueOverload thresholds", labels=["checkpoint", "severity"]
        )
        by_citizenship_dir = CounterMetricFamily(
            "border_crossing_persons_by_citizenship",
            "Persons cleared by citizenship and direction (entered / left)",
            labels=["citizenship", "direction"],
        )
        needed = GaugeMetricFamily(
            "border_lanes_needed",
            "Extra lanes that bring the wait under the warning threshold within 2 h at current arrivals",
            labels=["checkpoint", "direction"],
        )
        arrivals = GaugeMetricFamily(
            "border_arrivals_per_hour",
            "Parties that joined the queue in the last hour of event time",
            labels=["checkpoint", "direction"],
        )
        events = CounterMetricFamily(
            "border_checkpoint_events", "Accepted events per checkpoint", labels=["checkpoint"]
        )
        lag = GaugeMetricFamily(
            "bordermon_consumer_lag_messages",
            "Messages in border.events not yet processed, per owned partition",
            labels=["partition"],
        )
        info = GaugeMetricFamily(
            "border_checkpoint_info",
            "Checkpoint registry facts (value 1)",
            labels=["checkpoint", "name", "region", "mode", "lat", "lon"],
        )

        accepted_sum = dict.fromkeys(EVENT_TYPES, 0)
        by_citizenship: dict[str, int] = {}
        by_cit_dir: dict[tuple[str, str], int] = {}
        for cs in self._owned_checkpoints(owned):
            cid = cs.cp.id
            for t, n in cs.accepted.items():
                accepted_sum[t] += n
            for c, n in cs.net_by_citizenship().items():
                by_citizenship[c] = by_citizenship.get(c, 0) + n
            for d, tally in cs.citizenship_persons.items():
                for c, n in tally.items():
                    by_cit_dir[(c, d)] = by_cit_dir.get((c, d), 0) + n
            for d in DIRECTIONS:
                ds = cs.dirs[d]
                persons.add_metric([cid, d], cs.persons[d])
                queue.add_metric([cid, d], ds.length)
                wait.add_metric([cid, d], cs.wait_seconds(d))
                observed.add_metric([cid, d], ds.observed_wait)
                expected.add_metric([cid, d], cs.expected_wait_seconds(d))
                clearance.add_metric([cid, d], cs.clearance_per_lane(d) * ds.lanes)
                forecast_firing.add_metric([cid, d], 1.0 if ds.forecast.firing else 0.0)
                lanes.add_metric([cid, d], ds.lanes)
                for sev in SEVERITIES:
                    firing.add_metric([cid, d, sev], 1.0 if ds.alerts[sev].firing else 0.0)
                    forecast.add_metric([cid, d, sev], cs.forecast_seconds(d, sev))
                rate, extra = cs.advice(d)
                arrivals.add_metric([cid, d], rate)
                needed.add_metric([cid, d], extra)
            for name, value in cs.net_flows().items():
                net.add_metric([cid, name], value)
            if cs.last_ts is not None:
                last.add_metric([cid], cs.last_ts)
            for sev in SEVERITIES:
                threshold.add_metric([cid, sev], cs.cp.threshold_seconds(sev))
            events.add_metric([cid], sum(cs.accepted.values()))
            for partitioner in PARTITIONERS:
                if partitioner in cs.off_partition:
                    off_partition.add_metric([cid, partitioner], cs.off_partition[partitioner])
            cp = cs.cp
            info.add_metric([cid, cp.name, cp.region, cp.mode, str(cp.lat), str(cp.lon)], 1.0)
        for t, n in accepted_sum.items():
            accepted.add_metric([t], n)
        rejected_sum = dict.fromkeys(REJECT_REASONS, 0)
        for p in owned:
            ps = self.processor.state.get(p)
            if ps is not None:
                for r, n in ps.rejected.items():
                    rejected_sum[r] += n
        for r, n in rejected_sum.items():
            rejected.add_metric([r], n)
        for c, n in sorted(by_citizenship.items()):
            cumulative.add_metric([c], n)
        for (c, d), n in sorted(by_cit_dir.items()):
            by_citizenship_dir.add_metric([c, d], n)
        if self.highwater is not None:
            for p in sorted(owned):
                ps = self.processor.state.get(p)
                end = self.highwater(p)
                if ps is not None and end is not None:
                    lag.add_metric([str(p)], max(0, end - (ps.applied + 1)))
        yield from (
            accepted,
            rejected,
            persons,
            net,
            cumulative,
            queue,
            wait,
            observed,
            expected,
            clearance,
            forecast,
            forecast_firing,
            lanes,
            firing,
            last,
            threshold,
            events,
            by_citizenship_dir,
            arrivals,
            needed,
            lag,
            info,
            off_partition,
        )
