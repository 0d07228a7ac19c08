"""`make demo` installs only what the demo needs (the core and the plot extra), so a first
`make demo` is quick; `make test` installs the dev extra (the test extra plus ruff and mypy)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n: print the commands without running them; -B: as if nothing were installed yet.
    # Run under `make test` itself, a child make would print "Entering directory" lines
    # (MAKELEVEL/MAKEFLAGS are inherited): drop them, and ask for no directory lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "-n", "-B", target], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True, timeout=30).stdout


def test_make_demo_installs_core_and_plot_only():
    commands = _dry_run("demo")
    assert "pip install -q -e '.[plot]'" in commands
    assert "[test]" not in commands
    assert commands.rstrip().endswith("wirestack demo")


def test_make_test_installs_the_test_extra():
    """The dev extra is the test extra plus the lint gate (pyproject.toml)."""
    commands = _dry_run("test")
    assert "pip install -q -e '.[dev]'" in commands
    assert "pytest" in commands
