"""The README's commands work as written: its Python example runs and shows what it says,
its shell commands parse, and nothing it tells a user to run relies on a shell feature
that does not work under sudo or leaves files git would pick up."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wirestack.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_python_api_example_runs_and_explains_an_impaired_frame(tmp_path):
    code = re.search(r"## The Python API\n\n```python\n(.*?)```", README, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "b'hello, wire'" in out
    # why() of a frame the wire really did something to, not "no decisions recorded".
    assert re.search(r"^frame \d+: sent by .* dropped: independent loss \(p=0\.05\)$", out, re.M), out
    assert "no decisions recorded" not in out


def _wirestack_commands():
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0] if " #" in line else line
            for part in re.split(r"\||;|&&", line):
                words = shlex.split(part.strip()) if part.strip() else []
                if words and words[0] == "sudo":
                    words = words[1:]
                if words and words[0].endswith("wirestack") and words[0] != "wirestack":
                    yield words[1:]


@pytest.mark.parametrize("argv", list(_wirestack_commands()), ids=" ".join)
def test_every_wirestack_command_in_the_readme_parses(argv):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    assert extra == [] and args.command is not None


def test_no_job_control_under_sudo_and_no_stray_output_files():
    # `sudo kill %1` cannot work: sudo runs /bin/kill, which has no job table.
    assert "kill %" not in README
    ignored = (REPO / ".gitignore").read_text().split()
    for name in re.findall(r" -o (\S+)", README):
        # /tmp is cleaned by the system; a device (curl -o /dev/null) is not a file left behind.
        assert name.startswith(("/tmp/", "/dev/")) or name in ignored, name
