#!/usr/bin/env bash
# Apache Kafka (KRaft) on this machine from Maven Central's jars, the version and settings
# docker-compose.yml deploys, for running bordermon on the engine users deploy:
#   scripts/kafka.sh start [--nodes 3] [--port 9092]   # in the background; prints the address
#   scripts/kafka.sh stop                              # stops it (its data stays in .tmp/kafka)
#   scripts/kafka.sh status
# In the foreground instead: .venv/bin/python -m harness.apachekafka [--nodes 3] (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
state=.tmp/kafka
pidfile=$state/pid
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
  start)
    shift
    if running; then echo "kafka.sh: already running (pid $(cat "$pidfile")); see $state/run.log"; exit 0; fi
    make -s install-kafka
    mkdir -p "$state"
    .venv/bin/python -m harness.apachekafka --data "$state/data" "$@" >"$state/run.log" 2>&1 &
    echo $! >"$pidfile"
    while running && ! grep -q " at 127.0.0.1" "$state/run.log"; do sleep 0.2; done
    if ! running; then grep "error" "$state/run.log" >&2 || tail -n 5 "$state/run.log" >&2; rm -f "$pidfile"; exit 2; fi
    grep " at 127.0.0.1" "$state/run.log"
    ;;
  stop)
    if ! running; then echo "kafka.sh: not running"; exit 0; fi
    kill -TERM "$(cat "$pidfile")"
    while running; do sleep 0.2; done
    rm -f "$pidfile"
    echo "kafka.sh: stopped (data kept in $state/data; rm -rf it for a fresh cluster)"
    ;;
  status)
    if running; then grep " at 127.0.0.1" "$state/run.log"; else echo "kafka.sh: not running"; exit 1; fi
    ;;
  *)
    echo "usage: scripts/kafka.sh start [--nodes 3] [--port 9092] | stop | status" >&2
    exit 2
    ;;
esac
