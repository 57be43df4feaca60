# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: install install-monitoring run test test-unit test-integration test-faults bench accuracy lint format dashboards clean

install:
	@./scripts/bootstrap.sh

install-monitoring:
	@./scripts/install-monitoring.sh

run: install install-monitoring
	.venv/bin/bordermon demo

test: install install-monitoring
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m dashboards.generate --check
	.venv/bin/python -m monitoring.generate --check
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/pytest tests -v --durations=15

test-unit: install
	.venv/bin/pytest tests/unit -q

test-integration: install install-monitoring
	.venv/bin/pytest tests/integration -v

lint: install
	.venv/bin/ruff check .

format: install
	.venv/bin/ruff format .

# Fault tests (crash, scale-out, outages, SIGTERM, fuzz, refused authentication); `make test` runs them too.
test-faults: install install-monitoring
	.venv/bin/pytest tests/integration/test_reliability.py tests/integration/test_authentication.py tests/integration/test_pipeline.py tests/unit/test_fuzz.py -v

# Throughput, latency, memory, recovery on this machine: 1M events (BENCH_EVENTS), results in bench/results.json.
bench: install
	.venv/bin/python -m bench.run

# Wait estimates and the overload forecast against the simulator's true waits (bench/README.md).
accuracy: install
	.venv/bin/python -m bench.accuracy

dashboards: install
	.venv/bin/python -m dashboards.generate
	.venv/bin/python -m monitoring.generate

clean:
	rm -rf .venv .pytest_cache .ruff_cache .tmp *.egg-info
