"""`wirestack lab`: --seed changes every lab's run, the text fits 100 columns, --help lists
the labs."""

from __future__ import annotations

import pytest

from wirestack.cli import main
from wirestack.labs.experiments import LABS


def run(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    return (status,) + capsys.readouterr()


@pytest.mark.parametrize("name", list(LABS))
def test_another_seed_is_another_run_and_lines_fit_100_columns(capsys, name):
    status, one, err = run(capsys, ["lab", name, "--seed", "1"])
    assert status == 0 and err == ""
    _, two, _ = run(capsys, ["lab", name, "--seed", "2"])
    _, again, _ = run(capsys, ["lab", name, "--seed", "1"])
    assert one == again                   # same seed, same run
    assert one != two                     # another seed draws another wire
    assert max(len(line) for line in one.splitlines()) <= 100


def test_help_lists_every_lab(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    text = capsys.readouterr().out
    for lab in LABS.values():
        assert f"  {lab.name:<16} {lab.title}" in text
