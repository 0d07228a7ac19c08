"""`wirestack lab`: --seed changes every lab's run, the text fits 100 columns, --help lists
the labs."""

from __future__ import annotations

import pytest

from wirestack.cli import main
from wirestack.labs.experiments import LABS
from wirestack.labs.lab import MACHINE_NOTE


def run(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    return (status,) + capsys.readouterr()


def seeded(text: str) -> str:
    """The output without the lines about this machine's CPU time (they vary run to run)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(MACHINE_NOTE))


@pytest.mark.parametrize("name", list(LABS))
def test_another_seed_is_another_run_and_lines_fit_100_columns(capsys, name):
    status, one, err = run(capsys, ["lab", name, "--seed", "1"])
    assert status == 0 and err == ""
    _, two, _ = run(capsys, ["lab", name, "--seed", "2"])
    _, again, _ = run(capsys, ["lab", name, "--seed", "1"])
    assert seeded(one) == seeded(again)   # same seed, same run
    assert seeded(one) != seeded(two)     # another seed draws another wire
    assert max(len(line) for line in one.splitlines()) <= 100


def test_help_lists_every_lab(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    text = capsys.readouterr().out
    for lab in LABS.values():
        assert f"  {lab.name:<16} {lab.title}" in text


def test_readme_lab_numbers_are_those_the_labs_print(capsys):
    """The README's table quotes seed-1 figures: each number it quotes is in the output."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, seen in re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| ([^|]+) \|$", readme, re.M):
        numbers = re.findall(r"\d+(?:\.\d+)?", seen)
        if not numbers:
            continue
        _, out, _ = run(capsys, ["lab", name])
        for number in numbers:
            assert re.search(rf"(?<![\d.]){re.escape(number)}", out), (name, number)
