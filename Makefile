# The two commands of the README: `make run` and `make test`. Both install what they need.
# Apache Kafka: scripts/kafka.sh start|stop (one node or --nodes 3), the same the tests start.
.PHONY: install install-system install-kafka run test test-unit test-integration test-faults bench accuracy lint format dashboards clean

install:
	@./scripts/bootstrap.sh

install-system:
	@./scripts/install-system.sh

# Java 17 and Maven when missing, then Apache Kafka's jars (once; cached) for the tests on Kafka.
install-kafka: install
	@./scripts/install-system.sh kafka
	@.venv/bin/python -m harness.apachekafka --fetch-only

run: install install-system
	.venv/bin/bordermon demo

test: install install-system install-kafka
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m dashboards.generate --check
	.venv/bin/python -m monitoring.generate --check
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/vulture
	.venv/bin/pytest tests -v --durations=15

test-unit: install
	.venv/bin/pytest tests/unit -q

test-integration: install install-system install-kafka
	.venv/bin/pytest tests/integration -v

lint: install
	.venv/bin/ruff check .

format: install
	.venv/bin/ruff format .

# Fault tests (crash, scale-out, outages, SIGTERM, fuzz, refused authentication, broker faults on a
# three-node Kafka cluster: marked `faults`); `make test` runs them too.
test-faults: install install-system install-kafka
	.venv/bin/pytest tests/integration/test_cluster_faults.py tests/integration/test_reliability.py tests/integration/test_authentication.py tests/integration/test_pipeline.py tests/integration/test_transactions.py tests/unit/test_fuzz.py -v

# Throughput, latency, memory, recovery on this machine: 1M events (BENCH_EVENTS), results in bench/results.json.
bench: install install-kafka
	.venv/bin/python -m bench.run

# Wait estimates and the overload forecast against the simulator's true waits (bench/README.md).
accuracy: install
	.venv/bin/python -m bench.accuracy
	.venv/bin/python -m bench.surge

dashboards: install
	.venv/bin/python -m dashboards.generate
	.venv/bin/python -m monitoring.generate

clean:
	rm -rf .venv .pytest_cache .ruff_cache .tmp *.egg-info
