# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
PY := .venv/bin/python

.PHONY: bootstrap demo test lint bench clean

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) -m mmiotk.cli demo

lint: bootstrap
	.venv/bin/ruff check mmiotk hwsim drivers tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports

test: bootstrap lint
	$(PY) -m pytest -q

bench: bootstrap
	$(PY) benchmarks/run_all.py

clean:
	rm -rf .sim_build .pytest_cache .mypy_cache .ruff_cache
