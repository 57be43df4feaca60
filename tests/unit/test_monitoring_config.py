"""The monitoring pack's configuration, checked with the real promtool, amtool and schemas."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitoring"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=60)


def test_rules_are_valid_and_their_unit_tests_pass():
    check = run("promtool", "check", "rules", *map(str, (MON / "prometheus/rules").glob("*.yml")))
    assert check.returncode == 0, check.stdout + check.stderr
    tests = run("promtool", "test", "rules", "alerts_test.yml", cwd=MON / "prometheus/tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "SUCCESS" in tests.stdout


def test_every_pipeline_alert_is_tested_firing_and_not_firing():
    rules = yaml.safe_load((MON / "prometheus/rules/alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {"CheckpointSilent", "HighRejectRate", "WorkerDown", "ConsumerLagHigh", "NoEventsIngested"}
    tests = yaml.safe_load((MON / "prometheus/tests/alerts_test.yml").read_text())
    fired, quiet = set(), set()
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert fired == alerts and quiet == alerts


def test_alerts_follow_the_conventions_and_runbooks_exist():
    rules = yaml.safe_load((MON / "prometheus/rules/alerts.yml").read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"] if "alert" in r):
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        ann = rule["annotations"]
        assert ann["summary"] and "{{" not in ann["summary"]
        assert ann["description"]
        path = ann["runbook_url"].split("/blob/main/", 1)[1]
        assert (ROOT / path).is_file(), path
    assert (ROOT / "docs/runbooks/QueueOverload.md").is_file()


def test_prometheus_config_is_valid():
    result = run("promtool", "check", "config", "--syntax-only", str(MON / "prometheus/prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_configs_are_valid_and_route_by_severity():
    for name in ("alertmanager.yml", "alertmanager.examples.yml"):
        result = run("amtool", "check-config", str(MON / "alertmanager" / name))
        assert result.returncode == 0, result.stdout + result.stderr
    config = str(MON / "alertmanager/alertmanager.yml")
    cases = {
        ("severity=critical", "alertname=QueueOverload", "checkpoint=syrym"): "oncall-pager",
        ("severity=critical", "alertname=WorkerDown"): "oncall-pager",
        ("severity=warning", "alertname=QueueOverload", "checkpoint=syrym"): "oncall-ticket",
        ("severity=info", "alertname=Whatever"): "null",
        ("severity=warning", "alertname=QueueOverloadForecast", "checkpoint=syrym"): "oncall-ticket",
        ("severity=warning", "alertname=ArrivalSurge", "checkpoint=syrym"): "oncall-ticket",
    }
    for labels, receiver in cases.items():
        result = run("amtool", "config", "routes", "test", f"--config.file={config}", *labels)
        assert result.stdout.strip() == receiver, (labels, result.stdout, result.stderr)
    am = yaml.safe_load((MON / "alertmanager/alertmanager.yml").read_text())
    assert "checkpoint" in am["route"]["group_by"]
    inhibit = am["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    # Per queue: a critical for the trucks leaves the cars' warning alone.
    assert {"checkpoint", "direction", "lane_group"} <= set(inhibit["equal"])
    assert "lane_group" in am["route"]["group_by"]
    forecast = am["inhibit_rules"][1]
    assert forecast["target_matchers"] == ['alertname="QueueOverloadForecast"']
    assert 'alertname="QueueOverload"' in forecast["source_matchers"] and set(forecast["equal"]) == {
        "checkpoint",
        "direction",
        "lane_group",
    }
    # ArrivalSurge is a warning: a ticket (the route test above), never inhibited by a queue's critical.
    assert not any('alertname="ArrivalSurge"' in rule["target_matchers"] for rule in am["inhibit_rules"])


def test_compose_file_matches_the_compose_spec_and_mounts_exist():
    checker = str(Path(sys.executable).with_name("check-jsonschema"))
    overlays = ("docker-compose.cluster.yml", "docker-compose.secure.yml")
    result = run(checker, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml", *overlays)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "worker", "simulator", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, service in services.items():
        if name != "simulator":
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source == "./history":
                continue  # written by `bordermon backfill --out ./history` (docker creates it when missing)
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file()
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?"), "no default admin password may be committed"
    prom = services["prometheus"]["image"]
    am = services["alertmanager"]["image"]
    assert prom.endswith("v2.42.0") and am.endswith("v0.25.0"), "images must match the promtool/amtool in CI"
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN|API_KEY", key):
                assert str(value).startswith("${"), f"{name}.{key} must come from the environment, not the file"


def test_backtest_pages_repeat_as_the_pager_route_does():
    """`bordermon backtest` counts pages with the pager route's repeat interval."""
    from streams.offline.backtest import PAGE_REPEAT_SECONDS

    config = yaml.safe_load((ROOT / "monitoring/alertmanager/alertmanager.yml").read_text())
    pager = next(r for r in config["route"]["routes"] if r["receiver"] == "oncall-pager")
    value, unit = int(pager["repeat_interval"][:-1]), pager["repeat_interval"][-1]
    assert value * {"s": 1, "m": 60, "h": 3600}[unit] == PAGE_REPEAT_SECONDS
