#!/usr/bin/env bash
# System packages the tests and the demo run for real, from Debian, when missing
# (`install-system.sh` for the demo, `install-system.sh kafka` for the tests too):
#   Prometheus (with promtool) 2.42 and Alertmanager (with amtool) 0.25, the versions CI checks
#   configs with; tmux (the demo test drives a real terminal); chromium (the report test renders
#   the page headless); Java 17 and Maven (Apache Kafka from Maven Central's jars); Go and
#   Node.js (the producers in other languages).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${1:-}" = kafka ]; then
  if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  # Producers in other languages (tests/clients/): Go builds with the toolchain go.mod names,
  # fetched from the Go proxy by a Go >= 1.21 when the installed one is older.
  command -v go >/dev/null 2>&1 || need+=(golang-go)
  command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-system: installing ${need[*]} with apt-get" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packages start system services where init allows it; tests run their own on loopback.
