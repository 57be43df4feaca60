"""The Prometheus rules, as code: one config, one definition of each rule.

Recording rules give the global views over workers (each worker exports only the partitions it
owns, so sums over workers are global). Alert rules watch the pipeline itself; the border's own
QueueOverload is computed in event time by the workers and pushed to Alertmanager directly
(README, "Alerts"). Thresholds, the job selector and the runbook URL pattern live in
`RulesConfig`; metric names come from `bordermon.metrics`; alerts read the recording rules where
one exists. `python -m monitoring.generate` writes the rule files and the PrometheusRule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from bordermon import metrics as m
from bordermon.observability import JOB, job_selector, runbook_url


@dataclass(frozen=True)
class RulesConfig:
    job: str = JOB
    recording_interval: str = "30s"
    worker_down_minutes: int = 2
    no_events_window_minutes: int = 10
    no_events_for_minutes: int = 15
    reject_ratio: float = 0.05  # of consumed messages, over the ratio's window
    reject_for_minutes: int = 10
    consumer_lag_messages: int = 50_000
    consumer_lag_for_minutes: int = 10
    silent_window_minutes: int = 30  # no event in this window...
    silent_baseline_hours: int = 6  # ...from a checkpoint that sent more than
    silent_baseline_events: int = 20  # this many events over the baseline
    silent_for_minutes: int = 10

    def selector(self, metric: m.Metric, *matchers: str) -> str:
        """The metric's series restricted to this deployment's job (as kubernetes-mixin does)."""
        matchers = (job_selector(self.job), *matchers)
        return metric.series + "{" + ", ".join(matchers) + "}"


CONFIG: Final = RulesConfig()

# Recording rules: names other files (dashboards, tests) refer to.
EVENTS_ACCEPTED_RATE: Final = "border:events_accepted:rate5m"
EVENTS_REJECTED_RATE: Final = "border:events_rejected:rate5m"
REJECT_RATIO: Final = "border:reject_ratio:rate10m"
NET_FLOW_SUM: Final = "border:net_flow_persons:sum"
NET_FLOW_CUMULATIVE_SUM: Final = "border:net_flow_cumulative_persons:sum"
QUEUE_WAIT_MAX: Final = "border:queue_wait_seconds:max"
# Per lane group over a checkpoint's directions: the trucks' wait apart from the cars'.
LANE_GROUP_WAIT_MAX: Final = "border:queue_wait_seconds:max_by_lane_group"
LANE_GROUP_QUEUE_SUM: Final = "border:queue_length:sum_by_lane_group"
LANE_GROUP_LANES_SUM: Final = "border:lanes_open:sum_by_lane_group"
CONSUMER_LAG_SUM: Final = "border:consumer_lag_messages:sum"


def recording_rules(cfg: RulesConfig = CONFIG) -> list[dict[str, Any]]:
    s = cfg.selector
    accepted, rejected = s(m.EVENTS_ACCEPTED), s(m.EVENTS_REJECTED)
    return [
        {"record": EVENTS_ACCEPTED_RATE, "expr": f"sum by (type) (rate({accepted}[5m]))"},
        {"record": EVENTS_REJECTED_RATE, "expr": f"sum by (reason) (rate({rejected}[5m]))"},
        {
            "record": REJECT_RATIO,
            "expr": f"sum(rate({rejected}[10m]))\n  / (sum(rate({accepted}[10m])) + sum(rate({rejected}[10m])))\n",
        },
        {"record": NET_FLOW_SUM, "expr": f"sum by (checkpoint, window) ({s(m.NET_FLOW)})"},
        {"record": NET_FLOW_CUMULATIVE_SUM, "expr": f"sum by (citizenship) ({s(m.NET_FLOW_CUMULATIVE)})"},
        {"record": QUEUE_WAIT_MAX, "expr": f"max by (checkpoint) ({s(m.WAIT_ESTIMATE)})"},
        {"record": LANE_GROUP_WAIT_MAX, "expr": f"max by (checkpoint, lane_group) ({s(m.WAIT_ESTIMATE)})"},
        {"record": LANE_GROUP_QUEUE_SUM, "expr": f"sum by (checkpoint, lane_group) ({s(m.QUEUE_LENGTH)})"},
        {"record": LANE_GROUP_LANES_SUM, "expr": f"sum by (checkpoint, lane_group) ({s(m.LANES_OPEN)})"},
        {"record": CONSUMER_LAG_SUM, "expr": f"sum({s(m.CONSUMER_LAG)})"},
    ]


def _alert(name: str, expr: str, minutes: int, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": f"{minutes}m",
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description, "runbook_url": runbook_url(name)},
    }


def alert_rules(cfg: RulesConfig = CONFIG) -> list[dict[str, Any]]:
    s = cfg.selector
    silent_after = cfg.silent_window_minutes + cfg.silent_for_minutes
    events = s(m.CHECKPOINT_EVENTS)
    return [
        _alert(
            "WorkerDown",
            f"up{{{job_selector(cfg.job)}}} == 0",
            cfg.worker_down_minutes,
            "critical",
            "A bordermon worker cannot be scraped.",
            f"{{{{ $labels.instance }}}} has been down for {cfg.worker_down_minutes} minutes. Its partitions "
            "move to the other workers after the group rebalances; until then their checkpoints are not updated.",
        ),
        _alert(
            "NoEventsIngested",
            f"(sum(rate({s(m.MESSAGES_PROCESSED)}[{cfg.no_events_window_minutes}m])) or vector(0)) == 0",
            cfg.no_events_for_minutes,
            "critical",
            f"No border event has been processed for {cfg.no_events_for_minutes} minutes.",
            "The workers processed no message from border.events in the last "
            f"{cfg.no_events_window_minutes + cfg.no_events_for_minutes} minutes. Border traffic never stops, "
            "so producers, the broker or every worker are failing.",
        ),
        _alert(
            "HighRejectRate",
            f"{REJECT_RATIO} > {cfg.reject_ratio}",
            cfg.reject_for_minutes,
            "warning",
            f"More than {cfg.reject_ratio:.0%} of border events are rejected.",
            "{{ $value | humanizePercentage }} of consumed messages were dead-lettered over the last 10 "
            "minutes. Check border.deadletter for the reason and the producer.",
        ),
        _alert(
            "ConsumerLagHigh",
            f"{CONSUMER_LAG_SUM} > {cfg.consumer_lag_messages}",
            cfg.consumer_lag_for_minutes,
            "warning",
            "Workers are falling behind border.events.",
            "{{ $value | humanize }} messages are waiting to be processed. Live dashboards and QueueOverload "
            "alerts are late by at least that much traffic.",
        ),
        _alert(
            "CheckpointSilent",
            f"sum by (checkpoint) (increase({events}[{cfg.silent_window_minutes}m])) == 0\n"
            f"  and sum by (checkpoint) (increase({events}[{cfg.silent_baseline_hours}h]))"
            f" > {cfg.silent_baseline_events}\n",
            cfg.silent_for_minutes,
            "warning",
            "An active checkpoint stopped sending events.",
            f"{{{{ $labels.checkpoint }}}} sent events in the last {cfg.silent_baseline_hours} hours but nothing "
            f"for {silent_after} minutes: its feed, not its traffic, has most likely stopped.",
        ),
    ]


def rule_files(cfg: RulesConfig = CONFIG, recording_interval: str | None = None) -> dict[str, dict[str, Any]]:
    """File name -> rule file content; `recording_interval` overrides the config's (tests use 1s)."""
    interval = recording_interval or cfg.recording_interval
    return {
        "recording.yml": {
            "groups": [{"name": "bordermon-recording", "interval": interval, "rules": recording_rules(cfg)}]
        },
        "alerts.yml": {"groups": [{"name": "bordermon-pipeline", "rules": alert_rules(cfg)}]},
    }
