"""Names the pipeline shares with its operators: alert names, the runbook URL pattern, the
Prometheus job. One home, imported by the workers, the rule and dashboard generators and tests."""

from __future__ import annotations

from typing import Final

QUEUE_OVERLOAD: Final = "QueueOverload"
QUEUE_OVERLOAD_FORECAST: Final = "QueueOverloadForecast"
JOB: Final = "bordermon"
JOB_SELECTOR: Final = f'job="{JOB}"'
RUNBOOK_BASE: Final = "https://github.com/bordermon/bordermon/blob/main/docs/runbooks"


def runbook_url(alertname: str) -> str:
    return f"{RUNBOOK_BASE}/{alertname}.md"
