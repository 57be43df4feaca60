"""History in process: the domain over a log at event time (backtest, backfill, report data).
Never imports the worker: what it computes is what a worker would, without a broker."""
