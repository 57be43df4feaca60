#!/usr/bin/env bash
# Prometheus (with promtool), Alertmanager (with amtool), tmux and chromium from Debian, when missing.
# The versions CI checks configs with: prometheus 2.42, alertmanager 0.25 (bookworm).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v tmux >/dev/null 2>&1 || need+=(tmux)  # the demo test drives a real terminal
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the report test renders the page headless
if [ ${#need[@]} -gt 0 ]; then
  echo "install-monitoring: installing ${need[*]} with apt-get" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packages start system services where init allows it; tests run their own on loopback.
