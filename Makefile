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

.PHONY: all venv demo test test-fast bench clean distclean

all: test

$(DEMO_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[plot]'
	@touch $@

# The test extra includes everything the demo needs, so it also satisfies the demo's stamp.
$(TEST_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@ $(DEMO_STAMP)

venv: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/wirestack demo

test: $(TEST_STAMP)
	$(PY) -m pytest -q

# Everything except the tests that need root and /dev/net/tun.
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not interop and not slow"

# Each bench/*.py is a self-contained measurement script that prints its figures.
bench: $(TEST_STAMP)
	@set -e; found=0; for f in bench/*.py; do \
	  [ -e "$$f" ] || continue; found=1; echo "== $$f"; $(PY) "$$f"; done; \
	  [ $$found = 1 ] || echo "no benchmarks in bench/ yet"

clean:
	rm -rf build .pytest_cache .hypothesis demo.json src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	find . -maxdepth 1 \( -name '*.pcap' -o -name '*.png' \) -type f -exec rm -f {} +

distclean: clean
	rm -rf $(VENV)
