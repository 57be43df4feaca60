"""Running Prometheus and Alertmanager on loopback for one process tree (demo, tests)."""

from __future__ import annotations

from pathlib import Path

import yaml


def prometheus_command(
    binary: str,
    workdir: Path,
    port: int,
    targets: list[str],
    rules: list[Path],
    scrape_interval: str = "5s",
    alertmanager: str | None = None,
) -> list[str]:
    """Write a config scraping `targets` as job "bordermon" and return the command line."""
    config: dict = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(r) for r in rules],
        "scrape_configs": [{"job_name": "bordermon", "static_configs": [{"targets": targets}]}],
    }
    if alertmanager:
        target = alertmanager.removeprefix("http://")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return [
        binary,
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]


def alertmanager_command(binary: str, workdir: Path, port: int, config_text: str) -> list[str]:
    """Write the config and return a single-node (no cluster) Alertmanager command line."""
    path = workdir / "alertmanager.yml"
    path.write_text(config_text)
    return [
        binary,
        f"--config.file={path}",
        f"--storage.path={workdir / 'am'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
