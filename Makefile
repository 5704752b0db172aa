# liquid_nav — set-up and everyday commands. Every target sets up the virtualenv first (idempotent).
#   make demo   the main job: fly the shipped worlds, write videos and plots under out/demo
#   make test   the whole test suite (ROS 2 tests over real DDS in an isolated network namespace)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.liquid_nav-installed
export AMENT_PREFIX_PATH := $(abspath $(VENV))

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

# torch is installed first on its own so that the CPU wheel (2.13.0) is chosen on these machines
# and nothing pulls the CUDA build; everything else is pinned by requirements/constraints.txt.
$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[test,export,ros,ray]'
	touch $@

demo: setup
	$(VENV)/bin/liquid-nav demo --out out/demo

test: setup
	bash scripts/run_tests.sh

# Every benchmark prints its own figures and records its headline rows; bench/summary.py prints them as one table.
bench: export LIQUID_NAV_BENCH_TABLE := $(abspath out/bench/table.jsonl)
bench: setup
	mkdir -p out/bench && rm -f $(LIQUID_NAV_BENCH_TABLE)
	$(PY) bench/sim.py
	$(PY) bench/models.py
	bash scripts/isolated.sh $(PY) bench/ros.py
	PYTHONPATH=. $(PY) bench/train.py
	PYTHONPATH=. $(PY) bench/evaluate.py
	$(PY) bench/summary.py | tee out/bench/summary.txt

clean-venv:
	rm -rf $(VENV)
