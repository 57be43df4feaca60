"""Running bordermon's real processes for tests and the bench (not shipped): the embedded broker,
workers, the CLI, Prometheus and Alertmanager on loopback, and reading what they produce."""
