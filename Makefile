# Everything sets itself up: `make test` on a fresh clone creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo bench soak test lint unit servers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The whole rollout, live: the demo platform (throwaway Redis and PostgreSQL when installed),
# the bundled plan on a fast clock, and the cockpit in front of it. `q` stops everything.
demo: $(STAMP)
	$(BIN)/cockpit demo

# Every benchmark side by side with its peer (installs tmux, hey, pg_activity, numpy when
# missing; the servers come from `make servers`), then one table; figures in BENCHMARKS.md.
# `make bench BENCH_ARGS=--quick` checks they all work in about two minutes.
BENCH_ARGS ?=
bench: $(STAMP) servers
	bench/run $(BENCH_ARGS)

# An hour of the demo under load, watched by the full-screen cockpit in tmux: resident memory,
# CPU and buffer sizes every 10 s, a table and a verdict, results in bench/results/soak-*.json.
# `scripts/soak --minutes N` for a shorter run.
soak: $(STAMP)
	$(BIN)/python scripts/soak

# ruff covers the benchmarks and scripts too (they have no .py suffix to be found by); mypy src.
LINTED := src tests bench scripts/soak scripts/screenshot
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

servers:
	scripts/ensure-servers

test: lint servers
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/results bench/.venv-peers
