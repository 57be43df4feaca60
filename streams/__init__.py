"""Stream processing: validation -> per-checkpoint state -> alerts and metrics."""
