"""Stream processing, in three layers (imports flow down, never across):
- `streams.domain`: the pure pipeline: validation -> per-checkpoint state -> alerts, metrics, the
  waits feed. No Faust, no Kafka client, no clock but event time.
- `streams.worker`: the live worker around it: Faust and aiokafka, the commit protocol, the
  changelog, Alertmanager pushes, HTTP.
- `streams.offline`: the same domain over a log, in process: backtest, backfill, report data.
"""
