# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: install install-monitoring run test test-unit test-integration lint format dashboards clean

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
	.venv/bin/pytest tests -v --durations=15

test-unit: install
	.venv/bin/pytest tests/unit -q

test-integration: install install-monitoring
	.venv/bin/pytest tests/integration -v

lint: install
	.venv/bin/ruff check .

format: install
	.venv/bin/ruff format .

dashboards: install
	.venv/bin/python -m dashboards.generate

clean:
	rm -rf .venv .pytest_cache .ruff_cache .tmp *.egg-info
