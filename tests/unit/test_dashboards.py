"""Dashboards: generated from code, up to date, valid against the SDK's model, well-formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

from bordermon import metrics as catalog
from dashboards.generate import DASHBOARDS, render

ROOT = Path(__file__).resolve().parents[2] / "dashboards"


def test_committed_json_is_what_the_code_generates():
    for name, text in render().items():
        assert (ROOT / name).read_text() == text, f"{name} is stale: run python -m dashboards.generate"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_json_round_trips_through_the_grafana_model(name):
    data = json.loads((ROOT / name).read_text())
    model = Dashboard.from_json(data)
    again = json.loads(json.dumps(model.to_json(), default=lambda o: o.to_json()))
    assert again == data


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_use_the_datasource_variable_units_and_unique_ids(name):
    data = json.loads((ROOT / name).read_text())
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert data["uid"].startswith("bordermon-")
    for panel in data["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()


def test_overview_has_the_panels_operations_asked_for():
    overview = json.loads((ROOT / "overview.json").read_text())
    types = [p["type"] for p in overview["panels"]]
    assert "geomap" in types
    exprs = " ".join(t["expr"] for p in overview["panels"] for t in p["targets"])
    for metric in (catalog.NET_FLOW.series, catalog.NET_FLOW_CUMULATIVE.series, catalog.QUEUE_LENGTH.series,
                   catalog.WAIT_ESTIMATE.series, catalog.ALERTS_FIRING.series):  # fmt: skip
        assert metric in exprs
    drill = json.loads((ROOT / "checkpoint.json").read_text())
    assert "checkpoint" in {v["name"] for v in drill["templating"]["list"]}
