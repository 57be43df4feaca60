"""Reading a worker's /metrics (Prometheus text) into plain dicts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bordermon import metrics as catalog


def parse_metrics(text: str) -> dict[str, dict[tuple, float]]:
    """metric sample name -> {sorted label items: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def sample(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())))


def consumed(metrics: dict) -> float:
    """Accepted + rejected messages: every consumed message is exactly one of the two."""
    names = (catalog.EVENTS_ACCEPTED.series, catalog.EVENTS_REJECTED.series)
    return sum(sum(metrics.get(name, {}).values()) for name in names)


def merge_workers(texts: list[str]) -> tuple[dict[str, dict[tuple, float]], list[tuple[str, tuple]]]:
    """Every `border_*` series summed over several workers' /metrics, and the per-checkpoint series
    more than one exported (none once ownership settled: each exports only its own)."""
    total: dict[str, dict[tuple, float]] = {}
    twice: list[tuple[str, tuple]] = []
    for text in texts:
        for name, series in parse_metrics(text).items():
            if not name.startswith("border_"):
                continue
            slot = total.setdefault(name, {})
            for labels, value in series.items():
                if labels in slot and any(k == "checkpoint" for k, _ in labels):
                    twice.append((name, labels))
                slot[labels] = slot.get(labels, 0) + value
    return total, twice
