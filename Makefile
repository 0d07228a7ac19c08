# wirestack — developer entry points.  Every target is idempotent: the virtualenv
# is (re)built only when pyproject.toml changes (stamp file), so re-running is quick.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Two stamps: the demo needs only the core and the plot extra (quick to install); the tests
# need the test extra (scapy, dpkt, hypothesis ...). Each depends on pyproject.toml, so new
# dependencies trigger a reinstall.
DEMO_STAMP := $(VENV)/.wirestack-demo
TEST_STAMP := $(VENV)/.wirestack-test

.PHONY: all venv demo test test-fast lint coverage bench fuzz clean distclean

all: test

$(DEMO_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[plot]'
	@touch $@

# The dev extra (the test extra plus the lint gate) includes everything the demo needs, so
# it also satisfies the demo's stamp.
$(TEST_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@ $(DEMO_STAMP)

venv: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/wirestack demo

test: $(TEST_STAMP)
	$(PY) -m pytest -q

# Everything except the tests that need root and /dev/net/tun.
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not interop and not slow"

# Branch coverage of the fast tests (its TOTAL line is the figure quoted in the README).
# Not part of `make test`: tracing makes the tests about three times slower (31 s -> 89 s for
# these 596 on the development machine), far beyond a 15 % budget. The impairment
# matrix is left out too: it runs the paths of test_network.py 300 times over.
coverage: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not interop and not slow" --ignore=tests/test_tcp_matrix.py \
	  --cov --cov-report=term

# ruff (rules in pyproject.toml [tool.ruff]) and mypy ([tool.mypy]: strict on wire/, tcp/seq.py,
# storage/, udp/; the rest of the package checked as annotated).
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# The benchmarks print figures (they are not tests).  tap_bench.py needs root for its
# namespaces and TAP devices: run directly when make itself runs as root, through sudo
# otherwise, and skipped (with a note) when neither is possible.
bench: $(TEST_STAMP)
	$(PY) bench/sim_bench.py
	@if [ "$$(id -u)" = 0 ]; then $(PY) bench/tap_bench.py; \
	 elif command -v sudo >/dev/null 2>&1; then sudo $(PY) bench/tap_bench.py; \
	 else echo "bench/tap_bench.py skipped: needs root (run make bench as root)"; fi

# 10^6 random and mutated frames into a live host (tests/host_fuzz.py): prints frames/s,
# the number of exceptions (must be 0) and whether the connection still moves 4 MB intact.
fuzz: $(TEST_STAMP)
	$(PY) tests/host_fuzz.py 1000000

clean:
	rm -rf build .pytest_cache .hypothesis .coverage demo.json src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	find . -maxdepth 1 \( -name '*.pcap' -o -name '*.png' \) -type f -exec rm -f {} +

distclean: clean
	rm -rf $(VENV)
