# wirestack — developer entry points.  Every target is idempotent: the virtualenv
# is (re)built only when pyproject.toml changes (stamp file), so re-running is quick.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.wirestack-installed

.PHONY: all venv demo test test-fast bench clean distclean

all: test

# The stamp depends on pyproject.toml: new dependencies trigger a reinstall.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(STAMP)

demo: venv
	$(VENV)/bin/wirestack demo

test: venv
	$(PY) -m pytest -q

# Everything except the tests that need root and /dev/net/tun.
test-fast: venv
	$(PY) -m pytest -q -m "not interop and not slow"

# The benchmarks print figures (they are not tests).  tap_bench.py needs root for its
# namespaces and TAP devices: run directly when make itself runs as root, through sudo
# otherwise, and skipped (with a note) when neither is possible.
bench: venv
	$(PY) bench/sim_bench.py
	@if [ "$$(id -u)" = 0 ]; then $(PY) bench/tap_bench.py; \
	 elif command -v sudo >/dev/null 2>&1; then sudo $(PY) bench/tap_bench.py; \
	 else echo "bench/tap_bench.py skipped: needs root (run make bench as root)"; fi

clean:
	rm -rf build .pytest_cache .hypothesis demo.json src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	find . -maxdepth 1 \( -name '*.pcap' -o -name '*.png' \) -type f -exec rm -f {} +

distclean: clean
	rm -rf $(VENV)
