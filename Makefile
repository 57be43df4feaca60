# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: install run test test-unit test-integration lint format clean

install:
	@./scripts/bootstrap.sh

run: install
	.venv/bin/python scripts/run_sample.py

test: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest tests -v --durations=10

test-unit: install
	.venv/bin/pytest tests/unit -q

test-integration: install
	.venv/bin/pytest tests/integration -v

lint: install
	.venv/bin/ruff check .

format: install
	.venv/bin/ruff format .

clean:
	rm -rf .venv .pytest_cache .ruff_cache .tmp *.egg-info
