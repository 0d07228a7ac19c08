"""Congestion controllers behind one small interface (see ``base``), chosen by name.

``ALGORITHMS`` is read-only: to try a new controller, pass its class as
``congestion_control=`` (no registration, so no module-level mutable state).
"""

from __future__ import annotations

from types import MappingProxyType

from .base import CongestionControl, initial_window
from .cubic import Cubic
from .newreno import NewReno
from .none import NoCongestionControl

ALGORITHMS = MappingProxyType({"newreno": NewReno, "reno": NewReno, "cubic": Cubic,
                               "none": NoCongestionControl})


def get(name_or_class: str | type[CongestionControl]) -> type[CongestionControl]:
    """The controller class for a name ('newreno', 'cubic', 'none') or a class passed through."""
    if isinstance(name_or_class, type) and issubclass(name_or_class, CongestionControl):
        return name_or_class
    try:
        return ALGORITHMS[name_or_class]
    except (KeyError, TypeError):
        raise ValueError(f"unknown congestion control {name_or_class!r}; "
                         f"known: {', '.join(sorted(ALGORITHMS))}") from None


__all__ = ["ALGORITHMS", "CongestionControl", "Cubic", "NewReno", "NoCongestionControl", "get",
           "initial_window"]
