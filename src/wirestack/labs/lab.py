"""What a lab is: a question, runs that differ in one switch, the columns to compare, and a
lesson. ``conclude(runs)`` (optional) writes the closing lesson from the run's own numbers;
``extra_columns`` maps a column name to ``fn(result) -> str`` for figures that are not in
the shared column set of ``experiments.COLUMN_VALUES``. ``machine_notes(runs)`` (optional)
gives lines about figures that depend on the machine and vary from run to run (CPU time):
printed under the table, each starting with :data:`MACHINE_NOTE`, and kept out of the lesson
so that everything else stays the same for the same seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Each line of a lab's output that is not determined by the seed starts with this (after
# the indent); the determinism checks leave those lines out.
MACHINE_NOTE = "this machine's CPU"


@dataclass
class Lab:
    name: str
    title: str
    question: str
    runs: Callable[[int], list[tuple[str, Any]]]
    columns: tuple[str, ...]
    lesson: str
    conclude: Callable[[list[tuple[str, Any]]], str] | None = None
    extra_columns: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    machine_notes: Callable[[list[tuple[str, Any]]], list[str]] | None = None


def conclusion(runs: list[tuple[str, Any]], fn: Callable[..., str]) -> str:
    """``fn(*results)`` -> the lesson's numbers, for labs whose runs are in a fixed order."""
    return fn(*(r for _, r in runs))


def ratio(a: float, b: float) -> str:
    """a / b as "3.2×" (or "∞" when b is 0)."""
    return f"{a / b:.1f}×" if b else "∞"
