"""`bordermon report` in a real headless browser: it loads with nothing on the console, every
chart renders, and it needs no network (no external script, style or image)."""

from __future__ import annotations

import gzip
import re
import shutil

import orjson
import pytest

from harness.processes import run_cli
from producers.faults import bad_lines
from tests.fixtures.browser import render

pytestmark = pytest.mark.integration


def test_report_renders_every_chart_in_headless_chromium(tmp_path):
    sim = tmp_path / "lane-failure.jsonl"
    done = run_cli(["simulate", "--scenario", "lane-failure", "--out", str(sim)], {"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines = sim.read_bytes().splitlines()
    recent = [orjson.loads(line) for line in lines[:50]]
    for i in range(0, len(lines), 5000):
        lines[i:i] = list(bad_lines(recent, seed=i))  # every kind of bad input, for the rejects chart
    log = tmp_path / "log.jsonl.gz"
    log.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    page = tmp_path / "report.html"
    done = run_cli(["report", str(log), "--out", str(page)], {"PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("report: ") and str(page) in done.stdout

    text = page.read_text()
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?:', text), "the page must not fetch anything"
    rendered = render(page, tmp_path)
    assert rendered.console == [], rendered.console
    charts = re.findall(r'<div id="[^"]+" class="plotly-graph-div js-plotly-plot"', rendered.dom)
    assert len(charts) == 6, f"{len(charts)} charts rendered"
    assert rendered.dom.count('class="main-svg"') >= 12, "each chart draws its SVG layers"
    for heading in ("Who entered, who left, who stayed", "Alert timeline", "Rejected input", "Map"):
        assert heading in rendered.dom
    assert "zhana-zhol in" in rendered.dom, "the lane failure's alert is on the timeline"
    assert rendered.screenshot.stat().st_size > 50_000


def test_a_log_shorter_than_a_day_draws_its_day_and_a_stayed_curve(tmp_path):
    """A six-hour log from 21:00: one bar group per UTC day it touches (two), and a stayed curve
    sampled every 5 minutes, not a single point; the numbers in the page are those it draws."""
    import json

    from tests.unit.test_report_figures import REGISTRY, make_log

    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    log = tmp_path / "short.jsonl"
    start = 1663794000.0  # 2022-09-21 21:00 UTC
    log.write_bytes(b"\n".join(make_log(3, start, 6 * 3600.0, 400)) + b"\n")
    page = tmp_path / "short.html"
    env = {"PATH": "/usr/bin:/bin", "BORDERMON_CHECKPOINTS": str(registry)}
    done = run_cli(["report", str(log), "--out", str(page)], env, timeout=300)
    assert done.returncode == 0, done.stderr
    rendered = render(page, tmp_path, height=2400)
    assert rendered.console == [], rendered.console
    numbers = json.loads(re.search(r'id="bordermon-report">(.*?)</script>', rendered.dom, re.S).group(1))
    assert [d["day"] for d in numbers["daily"]] == ["2022-09-21", "2022-09-22"]
    assert len(numbers["sample_times"]) >= 6 * 12, "a point every 5 minutes of the six hours"
    everyone = [sum(v[i] for v in numbers["stayed"].values()) for i in range(len(numbers["sample_times"]))]
    assert everyone[-1] == numbers["persons"]["stayed"] and len(set(everyone)) > 5, "a curve, not a point"
    lines = re.findall(r'<path class="js-line" d="M([^"]+)"', rendered.dom)
    assert max(line.count("L") for line in lines) >= 20, "the stayed curve is a line through the samples"
    shutil.copy(rendered.screenshot, tmp_path / "short-report.png")
