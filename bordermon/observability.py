"""Names the pipeline shares with its operators: alert names, the runbook URL pattern, the
Prometheus job. One home, imported by the workers, the rule and dashboard generators and tests."""

from __future__ import annotations

from typing import Final

QUEUE_OVERLOAD: Final = "QueueOverload"
QUEUE_OVERLOAD_FORECAST: Final = "QueueOverloadForecast"
ARRIVAL_SURGE: Final = "ArrivalSurge"
JOB: Final = "bordermon"
RUNBOOK_BASE: Final = "https://github.com/bordermon/bordermon/blob/main/docs/runbooks"


def runbook_url(alertname: str) -> str:
    return f"{RUNBOOK_BASE}/{alertname}.md"


def job_selector(job: str = JOB) -> str:
    """The PromQL matcher for the workers' scrape job (rules, dashboards)."""
    return f'job="{job}"'
