"""Time units. The whole core counts time as an integer number of nanoseconds,
so virtual time is exact and runs are reproducible (no float drift)."""

NS = 1
US = 1_000
MS = 1_000_000
SEC = 1_000_000_000


def seconds(ns: int) -> float:
    """Nanoseconds to float seconds, for display."""
    return ns / SEC


def from_seconds(s: float) -> int:
    """Float seconds to integer nanoseconds (rounded)."""
    return int(round(s * SEC))
