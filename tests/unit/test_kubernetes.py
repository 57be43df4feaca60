"""deploy/kubernetes: every manifest valid, strictly, and the pieces agree with each other and
with the image and the worker's settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as operator

from bordermon.config import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.37.0"  # the newest kubernetes-validate 1.37 bundles
OPERATOR_KINDS = {"PodMonitor": operator.PodMonitor, "PrometheusRule": operator.PrometheusRule}


def manifests() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(DEPLOY.glob("*.yaml"))}


def by_kind(kind: str) -> dict:
    [found] = [m for m in manifests().values() if m["kind"] == kind]
    return found


def test_core_manifests_pass_strict_validation_against_current_kubernetes():
    core = [DEPLOY / n for n, m in manifests().items() if m["kind"] not in {*OPERATOR_KINDS, "Kustomization"}]
    assert len(core) >= 5
    tool = str(Path(sys.executable).with_name("kubernetes-validate"))
    done = subprocess.run([tool, "--strict", "-k", KUBERNETES, *map(str, core)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(core), done.stdout


def drop_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("kind", sorted(OPERATOR_KINDS))
def test_prometheus_operator_resources_match_their_crd_models(kind):
    """Validated by the CRD's own models (cloudcoil), strictly: a field the model does not know
    would be dropped on the way through, so the round trip must give the document back."""
    document = by_kind(kind)
    model = OPERATOR_KINDS[kind].model_validate(document)
    assert drop_nulls(model.model_dump(by_alias=True, exclude_unset=True, mode="json")) == document


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {n for n in manifests() if n != "kustomization.yaml"}


def test_selectors_ports_probes_and_identity_agree():
    sts, service, pdb, monitor = (by_kind(k) for k in ("StatefulSet", "Service", "PodDisruptionBudget", "PodMonitor"))
    labels = sts["spec"]["template"]["metadata"]["labels"]
    for selector in (sts["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"], monitor["spec"]["selector"]["matchLabels"]):  # fmt: skip
        assert selector.items() <= labels.items()
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    [container] = sts["spec"]["template"]["spec"]["containers"]
    ports = {p["name"] for p in container["ports"]}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    app = (ROOT / "streams" / "worker" / "app.py").read_text()
    assert '"/healthz"' in app and '"/readyz"' in app
    user = re.search(r"^USER (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert user and sts["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user.group(1))
    env = {e["name"]: e for e in container["env"]}
    assert env["BORDERMON_GROUP_INSTANCE_ID"]["value"] == "$(POD_NAME)", "static membership from the pod name"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["BORDERMON_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "bordermon-kafka"


def test_every_setting_is_one_the_worker_knows():
    known = {o.env for o in OPTIONS} | {
        name for name in re.findall(r'"(BORDERMON_KAFKA_[A-Z_]+)"', (ROOT / "bordermon/security.py").read_text())
    }
    config = by_kind("ConfigMap")["data"]
    [container] = by_kind("StatefulSet")["spec"]["template"]["spec"]["containers"]
    names = set(config) | {e["name"] for e in container["env"] if e["name"] != "POD_NAME"}
    assert names <= known, f"unknown settings: {sorted(names - known)}"


def test_replicas_do_not_exceed_partitions():
    replicas = by_kind("StatefulSet")["spec"]["replicas"]
    assert replicas <= int(by_kind("ConfigMap")["data"]["BORDERMON_PARTITIONS"])


def test_prometheus_rule_is_generated_from_the_rule_files():
    done = subprocess.run([sys.executable, "-m", "monitoring.generate", "--check"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    groups = [g for p in sorted((ROOT / "monitoring/prometheus/rules").glob("*.yml"))
              for g in yaml.safe_load(p.read_text())["groups"]]  # fmt: skip
    assert by_kind("PrometheusRule")["spec"]["groups"] == groups
