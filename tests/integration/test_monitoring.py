"""Issue 4 acceptance: every dashboard query against a real Prometheus scraping a real worker,
and QueueOverload through a real Alertmanager to an on-call webhook (firing, re-push, resolve,
inhibition)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from harness.metrics import consumed, parse_metrics
from harness.processes import (
    BIN,
    Worker,
    base_env,
    free_port,
    read_topic,
    run_cli,
    start_alertmanager,
    start_prometheus,
    wait_until,
)
from monitoring.generate import write_rule_files
from monitoring.rules import recording_rules
from tests.fixtures.clients import publish_with_librdkafka
from tests.fixtures.mixedlog import mixed_log, write_log
from tests.fixtures.seasonal import seasonal_log

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((path.name, panel["title"], target["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str, str]]:
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
                selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", query).groups()
                out.append((path.name, variable["name"], selector, label))
    return out


def test_every_dashboard_query_returns_data_from_a_real_prometheus(broker, tmp_path):
    env = base_env(broker)
    worker = Worker(env, tmp_path / "worker.log")
    prom = None
    try:
        worker.wait_ready()
        # The generated rules, evaluated every second instead of every 30 s: the recording rules
        # the pipeline dashboard reads have values within the test.
        rules = write_rule_files(tmp_path, recording_interval="1s")
        prom, url = start_prometheus(tmp_path, [f"127.0.0.1:{worker.port}"], rules)
        cps = ["syrym", "taskala", "kairak", "zhana-zhol", "astana-airport"]
        log = tmp_path / "log.jsonl"
        # Four ordinary days at syrym first: ArrivalSurge's baseline (and its panel) needs three.
        history = seasonal_log({("syrym", "in"): 6.0}, 4, [], seed=4, start=datetime(2022, 9, 17, tzinfo=UTC))
        lines = history + mixed_log(cps, good_count=6000, seed=4)
        write_log(str(log), lines)
        replay = run_cli(["replay", str(log), "--max-speed", "-q"], env)
        assert replay.returncode == 0, replay.stderr
        # The same checkpoints a day later from a librdkafka producer at its default (CRC32)
        # partitioner: re-routed, for the pipeline dashboard's off-partition panel.
        later = mixed_log(cps, good_count=1000, seed=5, start=datetime(2022, 9, 23, tzinfo=UTC))
        publish_with_librdkafka(broker.address, later)
        total = int(replay.stdout.split()[1]) + len(later)
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == total, 60, "drained")

        queries = panel_queries()
        assert len(queries) >= 20
        # Every recording rule has series too (those per lane group included).
        queries += [("recording rules", rule["record"], rule["record"]) for rule in recording_rules()]

        def evaluate(expr: str) -> list:
            expr = expr.replace("$__rate_interval", "15s").replace("$checkpoint", "syrym").replace("$lane_group", ".*")
            data = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            assert data["status"] == "success", data
            return data["data"]["result"]

        def all_return_series() -> bool:
            return all(evaluate(expr) for _, _, expr in queries)

        try:
            wait_until(all_return_series, 60, "every panel query to return series", interval=1)
        finally:
            empty = [(board, title, expr) for board, title, expr in queries if not evaluate(expr)]
            assert not empty, f"queries without data: {empty}"
        # The dashboards' variables: `label_values(selector, label)` is Grafana's call of
        # Prometheus's label-values API with that selector.
        for board, name, selector, label in variable_queries():
            selector = selector.replace("$checkpoint", "syrym")
            values = get_json(f"{url}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector}))
            assert values["data"], f"{board}: variable {name} has no values"
        rules_state = get_json(f"{url}/api/v1/rules")
        broken = [(r["name"], r.get("lastError")) for g in rules_state["data"]["groups"] for r in g["rules"]
                  if r["health"] == "err"]  # fmt: skip
        assert not broken, broken
    finally:
        if prom is not None:
            prom.stop()
        worker.stop()


def arrivals_then_crossings(first: int, count: int, kind: str) -> list[str]:
    lines = []
    for i in range(first, first + count):
        ts = f"2022-09-21T{6 + i * 30 // 3600:02d}:{i * 30 % 3600 // 60:02d}:{i * 30 % 60:02d}Z"
        event = {"event_id": f"am-{i}", "type": kind, "checkpoint_id": "syrym", "direction": "in", "ts": ts}
        if kind == "crossing":
            event.update(persons=2, citizenship="RU")
        lines.append(json.dumps(event))
    return lines


def shipped_config_for_tests(hook_port: int) -> dict:
    """The shipped Alertmanager config, with second-scale grouping and every webhook receiver
    pointed at the local webhook log (routes, receivers and inhibitions as shipped)."""
    config = yaml.safe_load((ROOT / "monitoring/alertmanager/alertmanager.yml").read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook_cfg in receiver.get("webhook_configs", []):
            hook_cfg["url"] = f"http://127.0.0.1:{hook_port}{urllib.parse.urlparse(hook_cfg['url']).path}"
    return config


def test_queue_overload_pages_through_alertmanager_and_resolves(broker, tmp_path):
    hook_port = free_port()
    hook_out = tmp_path / "webhook.jsonl"
    hook_file = open(hook_out, "wb")  # noqa: SIM115 - closed in finally
    hook = subprocess.Popen([BIN, "webhook-log", "--port", str(hook_port)], stdout=hook_file, stderr=subprocess.DEVNULL)
    config = shipped_config_for_tests(hook_port)
    am, am_url = start_alertmanager(tmp_path, yaml.safe_dump(config))
    env = base_env(broker, BORDERMON_ALERTMANAGER_URL=am_url, BORDERMON_ALERTMANAGER_REPUSH_SECONDS="2")
    worker = Worker(env, tmp_path / "worker.log")

    def notifications() -> list[dict]:
        out = []
        for line in hook_out.read_text().splitlines():
            entry = json.loads(line)
            for alert in entry["notification"]["alerts"]:
                out.append({"path": entry["path"], "status": alert["status"], **alert["labels"]})
        return out

    def seen(**want: str) -> bool:
        return any(all(n.get(k) == v for k, v in want.items()) for n in notifications())

    try:
        worker.wait_ready()
        log1, log2 = tmp_path / "surge.jsonl", tmp_path / "relief.jsonl"
        log1.write_text("\n".join(arrivals_then_crossings(0, 80, "arrival")) + "\n")
        log2.write_text("\n".join(arrivals_then_crossings(80, 40, "crossing")) + "\n")
        assert run_cli(["replay", str(log1), "--max-speed", "-q"], env).returncode == 0
        firing = {"path": "/ticket", "status": "firing", "alertname": "QueueOverload", "severity": "warning",
                  "checkpoint": "syrym", "direction": "in"}  # fmt: skip
        wait_until(lambda: seen(**firing), 30, "the firing notification at the ticket receiver")

        def updated_at() -> str:
            alerts = get_json(f"{am_url}/api/v2/alerts?filter=alertname%3D%22QueueOverload%22")
            return alerts[0]["updatedAt"] if alerts else ""

        first = updated_at()
        wait_until(lambda: updated_at() > first, 15, "the worker to re-push the firing alert")

        assert run_cli(["replay", str(log2), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: seen(**{**firing, "status": "resolved"}), 30, "the resolved notification")

        # Inhibition: a critical alert silences the warning of the same queue.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pair = [
            {"labels": {"alertname": "QueueOverload", "severity": sev, "checkpoint": "kairak", "direction": "in"},
             "startsAt": now}
            for sev in ("critical", "warning")
        ]  # fmt: skip
        request = urllib.request.Request(
            f"{am_url}/api/v2/alerts", data=json.dumps(pair).encode(), headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=5).close()
        wait_until(lambda: seen(path="/page", checkpoint="kairak", severity="critical"), 30, "critical page")
        time.sleep(3)  # a warning notification would follow within group_wait + group_interval
        assert not seen(checkpoint="kairak", severity="warning"), "critical must inhibit the warning"
    finally:
        worker.stop()
        am.stop()
        hook.terminate()
        hook.wait(10)
        hook_file.close()


def growing_queue(minutes: int, first_minute: int = 0) -> list[str]:
    """Syrym (1 lane, 30 an hour nominal, critical 6 h) entering: a party arrives every minute and
    one clears every three: the queue grows by 40 an hour."""
    lines = []
    for m in range(first_minute, first_minute + minutes):
        ts = f"2022-09-22T{m // 60:02d}:{m % 60:02d}:00Z"
        base = {"checkpoint_id": "syrym", "direction": "in", "ts": ts}
        lines.append(json.dumps({**base, "event_id": f"fc-a{m}", "type": "arrival"}))
        if m % 3 == 2:
            lines.append(json.dumps({**base, "event_id": f"fc-c{m}", "type": "crossing", "persons": 1,
                                     "citizenship": "RU"}))  # fmt: skip
    return lines


def test_forecast_opens_a_ticket_first_and_is_inhibited_once_the_overload_pages(broker, tmp_path):
    """QueueOverloadForecast reaches the ticket receiver hours before the critical QueueOverload; when
    that fires (a page), Alertmanager suppresses the forecast of the same queue."""
    hook_port = free_port()
    hook_out = tmp_path / "webhook.jsonl"
    hook_file = open(hook_out, "wb")  # noqa: SIM115 - closed in finally
    hook = subprocess.Popen([BIN, "webhook-log", "--port", str(hook_port)], stdout=hook_file, stderr=subprocess.DEVNULL)
    config = shipped_config_for_tests(hook_port)
    am, am_url = start_alertmanager(tmp_path, yaml.safe_dump(config))
    env = base_env(broker, BORDERMON_ALERTMANAGER_URL=am_url, BORDERMON_ALERTMANAGER_REPUSH_SECONDS="2")
    worker = Worker(env, tmp_path / "worker.log")

    def notified(path: str, alertname: str, severity: str) -> bool:
        for line in hook_out.read_text().splitlines():
            entry = json.loads(line)
            for alert in entry["notification"]["alerts"]:
                labels = alert["labels"]
                if (entry["path"], labels["alertname"], labels["severity"], alert["status"]) == (
                    path, alertname, severity, "firing") and labels["checkpoint"] == "syrym":  # fmt: skip
                    return True
        return False

    def forecast_state() -> str:
        alerts = get_json(f"{am_url}/api/v2/alerts?filter=alertname%3D%22QueueOverloadForecast%22")
        return alerts[0]["status"]["state"] if alerts else ""

    try:
        worker.wait_ready()
        # 3 h 40 min: the queue reaches about 147 parties (a 4.9 h estimate): critical is forecast
        # within 90 minutes, but not reached.
        early, late = tmp_path / "early.jsonl", tmp_path / "late.jsonl"
        early.write_text("\n".join(growing_queue(220)) + "\n")
        late.write_text("\n".join(growing_queue(100, first_minute=220)) + "\n")
        assert run_cli(["replay", str(early), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: notified("/ticket", "QueueOverloadForecast", "warning"), 30, "the forecast ticket")
        assert not notified("/page", "QueueOverload", "critical"), "the forecast comes before the page"
        alerts = [json.loads(r.value) for r in read_topic(broker.address, "border.alerts")]
        forecast = [a for a in alerts if a["alertname"] == "QueueOverloadForecast"]
        assert forecast and forecast[0]["status"] == "firing" and forecast[0]["forecast_minutes"] <= 90
        assert forecast_state() == "active"
        # Another 100 minutes: the queue passes 180 (the 6 h critical estimate) for 10 minutes.
        assert run_cli(["replay", str(late), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: notified("/page", "QueueOverload", "critical"), 30, "the critical page")
        wait_until(lambda: forecast_state() == "suppressed", 20, "the forecast inhibited by the overload")
    finally:
        worker.stop()
        am.stop()
        hook.terminate()
        hook_file.close()
