"""Every metric a worker exports: name, kind, help and labels, defined once.

The collector and the worker's counters build their families from these; the live view, the
dashboards, the recording and alert rules, the backfill, the tests and the bench refer to a
series by `Metric.series` (what Prometheus stores: counters gain `_total`), never by a literal.
The names are part of the operator contract (`CONTRACT.md`, "Metrics").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    name: str  # the family name; a counter's samples are `{name}_total`
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds, seconds

    @property
    def series(self) -> str:
        """The sample name Prometheus stores and queries use."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    @property
    def bucket(self) -> str:
        """A histogram's bucket series, for histogram_quantile."""
        assert self.kind == "histogram", self.name
        return f"{self.name}_bucket"


CHECKPOINT_DIRECTION: Final = ("checkpoint", "direction")
# A queue: one lane group of a checkpoint in one direction (`all` for a checkpoint without groups).
QUEUE: Final = ("checkpoint", "direction", "lane_group")

# -- border: what the traffic is doing (computed from state at scrape time) -----------------------
EVENTS_ACCEPTED: Final = Metric("border_events_accepted", "counter", "Accepted events", ("type",))
EVENTS_REJECTED: Final = Metric("border_events_rejected", "counter", "Rejected messages", ("reason",))
CROSSING_PERSONS: Final = Metric("border_crossing_persons", "counter", "Persons cleared", CHECKPOINT_DIRECTION)
CROSSING_PERSONS_BY_CITIZENSHIP: Final = Metric(
    "border_crossing_persons_by_citizenship",
    "counter",
    "Persons cleared by citizenship and direction (entered / left)",
    ("citizenship", "direction"),
)
CHECKPOINT_EVENTS: Final = Metric(
    "border_checkpoint_events", "counter", "Accepted events per checkpoint", ("checkpoint",)
)
EVENTS_OFF_PARTITION: Final = Metric(
    "border_events_off_partition",
    "counter",
    "Events that arrived off their checkpoint's home (murmur2) partition and were forwarded to it, "
    "by the producer partitioner that most likely placed them",
    ("checkpoint", "partitioner"),
)
NET_FLOW: Final = Metric(
    "border_net_flow_persons", "gauge", "Persons in minus out over (T_c - window, T_c]", ("checkpoint", "window")
)
NET_FLOW_CUMULATIVE: Final = Metric(
    "border_net_flow_cumulative_persons",
    "gauge",
    "Persons in minus out since the worker's state began",
    ("citizenship",),
)
QUEUE_LENGTH: Final = Metric("border_queue_length", "gauge", "Parties waiting", QUEUE)
WAIT_ESTIMATE: Final = Metric("border_queue_wait_estimate_seconds", "gauge", "Estimated wait", QUEUE)
WAIT_OBSERVED: Final = Metric(
    "border_queue_wait_observed_seconds",
    "gauge",
    "Wait of the latest party cleared from a non-empty queue (first in, first out)",
    QUEUE,
)
WAIT_EXPECTED: Final = Metric(
    "border_queue_wait_expected_seconds",
    "gauge",
    "Expected wait for a party joining now: the queue over the measured clearance rate "
    "(weighed against the nominal capacity while few crossings were seen)",
    QUEUE,
)
CLEARANCE_RATE: Final = Metric(
    "border_queue_clearance_rate_per_hour",
    "gauge",
    "Parties the open lanes clear per hour, measured while the queue was busy over the last hour "
    "(longer for slow lanes), weighed against the nominal capacity while few crossings were seen",
    QUEUE,
)
OVERLOAD_FORECAST: Final = Metric(
    "border_queue_overload_forecast_seconds",
    "gauge",
    "Event time until the wait estimate reaches the threshold at current arrival and clearance rates "
    "(+Inf when the queue is not growing)",
    (*QUEUE, "severity"),
)
FORECAST_FIRING: Final = Metric("border_forecast_alerts_firing", "gauge", "1 while QueueOverloadForecast fires", QUEUE)
LANES_OPEN: Final = Metric("border_lanes_open", "gauge", "Lanes open", QUEUE)
LANES_NEEDED: Final = Metric(
    "border_lanes_needed",
    "gauge",
    "Extra lanes that bring the wait under the warning threshold within 2 h at current arrivals",
    QUEUE,
)
ARRIVALS_RATE: Final = Metric(
    "border_arrivals_per_hour", "gauge", "Parties that joined the queue in the last hour of event time",
    CHECKPOINT_DIRECTION,
)  # fmt: skip
ARRIVALS_BASELINE: Final = Metric(
    "border_arrivals_baseline_per_hour",
    "gauge",
    "Typical arrivals per hour for this time at this checkpoint and direction (ArrivalSurge's baseline; "
    "absent while too little history is known)",
    CHECKPOINT_DIRECTION,
)
SURGE_FIRING: Final = Metric("border_surge_alerts_firing", "gauge", "1 while ArrivalSurge fires", CHECKPOINT_DIRECTION)
ALERTS_FIRING: Final = Metric("border_alerts_firing", "gauge", "1 while QueueOverload fires", (*QUEUE, "severity"))
LAST_EVENT: Final = Metric(
    "border_last_event_timestamp_seconds", "gauge", "Latest accepted event time", ("checkpoint",)
)
WAIT_THRESHOLD: Final = Metric(
    "border_wait_threshold_seconds", "gauge", "QueueOverload thresholds", ("checkpoint", "lane_group", "severity")
)
CHECKPOINT_INFO: Final = Metric(
    "border_checkpoint_info",
    "gauge",
    "Checkpoint registry facts (value 1)",
    ("checkpoint", "name", "region", "mode", "lat", "lon"),
)

# -- bordermon: how the pipeline itself is doing -------------------------------------------------
CONSUMER_LAG: Final = Metric(
    "bordermon_consumer_lag_messages",
    "gauge",
    "Messages in border.events not yet processed, per owned partition",
    ("partition",),
)
MESSAGES_PROCESSED: Final = Metric(
    "bordermon_messages_processed", "counter", "border.events messages processed by this worker process"
)
MESSAGES_FORWARDED: Final = Metric(
    "bordermon_messages_forwarded",
    "counter",
    "border.events messages found off their checkpoint's home partition and forwarded there",
)
MESSAGES_FORWARDED_RECEIVED: Final = Metric(
    "bordermon_messages_forwarded_received",
    "counter",
    "Forwarded messages received from the repartition topic (including re-sent ones skipped)",
)
MESSAGES_SKIPPED: Final = Metric(
    "bordermon_messages_skipped",
    "counter",
    "Re-delivered messages already applied to the recovered state (not counted again)",
)
UNACKNOWLEDGED_WRITE_AGE: Final = Metric(
    "bordermon_unacknowledged_write_seconds",
    "gauge",
    "Age of the oldest state write the brokers have not acknowledged yet (0: none); input after it "
    "is not acknowledged either, so a stall loses nothing and shows here",
)
ALERTMANAGER_PUSHES: Final = Metric(
    "bordermon_alertmanager_pushes",
    "counter",
    "Alerts posted to Alertmanager, by outcome (ok, failed: retried every second, re-pushed while firing)",
    ("outcome",),
)
BATCH_DURATION: Final = Metric(
    "bordermon_batch_duration_seconds",
    "histogram",
    "Time to process one batch (validation, state, emits)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INGEST_LATENCY: Final = Metric(
    "bordermon_ingest_latency_seconds",
    "histogram",
    "Broker append time to end of processing",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# What the state collector exports, in exposition order.
STATE_METRICS: Final = (
    EVENTS_ACCEPTED,
    EVENTS_REJECTED,
    CROSSING_PERSONS,
    NET_FLOW,
    NET_FLOW_CUMULATIVE,
    QUEUE_LENGTH,
    WAIT_ESTIMATE,
    WAIT_OBSERVED,
    WAIT_EXPECTED,
    CLEARANCE_RATE,
    OVERLOAD_FORECAST,
    FORECAST_FIRING,
    LANES_OPEN,
    ALERTS_FIRING,
    LAST_EVENT,
    WAIT_THRESHOLD,
    CHECKPOINT_EVENTS,
    CROSSING_PERSONS_BY_CITIZENSHIP,
    ARRIVALS_RATE,
    ARRIVALS_BASELINE,
    SURGE_FIRING,
    LANES_NEEDED,
    CONSUMER_LAG,
    CHECKPOINT_INFO,
    EVENTS_OFF_PARTITION,
)
PROCESS_METRICS: Final = (
    MESSAGES_PROCESSED,
    MESSAGES_FORWARDED,
    MESSAGES_FORWARDED_RECEIVED,
    MESSAGES_SKIPPED,
    UNACKNOWLEDGED_WRITE_AGE,
    ALERTMANAGER_PUSHES,
    BATCH_DURATION,
    INGEST_LATENCY,
)
ALL: Final = STATE_METRICS + PROCESS_METRICS
