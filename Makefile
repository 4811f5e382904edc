# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real corpus for tests and benchmarks, found by path (never committed).
NEWSDESK_DATA ?= ../shared/data/thucnews
export NEWSDESK_DATA

.PHONY: install demo test check lint bench server notebook clean

install: $(STAMP)

# The exact versions this project is tested with; pyproject.toml declares compatible ranges.
CONSTRAINTS := constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -c $(CONSTRAINTS) torch
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/newsdesk demo

# The suite runs in TEST_WORKERS processes, each taking whole modules (so a module's fixtures
# are built once), the costliest modules first (tests/conftest.py orders them). Much of it
# waits on servers, subprocesses and timeouts, which the other worker fills. One torch
# thread per process: two OpenMP threads in each of two processes on two cores spin against
# each other.
TEST_WORKERS ?= 2
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=25

# The fast tier, for your own loop: lint, the import contracts, and the tests that need no
# server, browser, corpus, wheel or real training (markers set in tests/conftest.py). The
# folders that hold only such tests are not even collected: importing Lightning and
# transformers alone takes longer than the tests that remain.
FAST_MARKERS := not (server or browser or packaging or corpus or slow)
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "$(FAST_MARKERS)" \
		--ignore=tests/server --ignore=tests/browser --ignore=tests/integrations \
		--ignore=tests/test_packaging.py --ignore=tests/test_notebooks.py

# A tracking server on a private PostgreSQL cluster in mlruns/postgres, on 127.0.0.1:5000.
server: install
	$(VENV)/bin/newsdesk server --local-postgres mlruns/postgres --artifacts-destination mlruns/server-artifacts

# JupyterLab on notebooks/ (127.0.0.1 only); the notebook finds the store that `make demo` filled.
notebook: install
	cd notebooks && $(abspath $(VENV))/bin/jupyter lab --ip 127.0.0.1 --allow-root compare_runs.ipynb

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/logger_overhead.py --out benchmarks/results
	$(PY) benchmarks/loop_slowdown.py --out benchmarks/results
	$(PY) benchmarks/train_thucnews.py --data $(NEWSDESK_DATA) --out benchmarks/results
	$(PY) benchmarks/ddp_thucnews.py --data $(NEWSDESK_DATA) --out benchmarks/results
	$(PY) benchmarks/system_metrics.py --out benchmarks/results
	$(PY) benchmarks/sweep_thucnews.py --data $(NEWSDESK_DATA) --out benchmarks/results
	$(PY) benchmarks/dashboard.py --data $(NEWSDESK_DATA) --out benchmarks/results
	$(PY) benchmarks/server_postgres.py --out benchmarks/results
	$(PY) benchmarks/store_outage.py --out benchmarks/results
	$(PY) benchmarks/server_processes.py --out benchmarks/results
	$(PY) benchmarks/startup.py --data $(NEWSDESK_DATA) --out benchmarks/results
	$(PY) benchmarks/busy_machine.py --max-steps 150 --out benchmarks/results
	$(PY) benchmarks/demo_stopping.py --out benchmarks/results
	$(PY) benchmarks/board.py --out benchmarks/results
	$(PY) benchmarks/evaluation_record.py --data $(NEWSDESK_DATA) --out benchmarks/results

clean:
	rm -rf $(VENV) .pytest_cache
