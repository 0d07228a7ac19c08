"""The event log: what the protocol machinery decided and when.

Each entry is a plain dict ``{"t": ns, "host": name, "kind": kind, ...}``. TCP entries carry
``conn`` ("10.0.0.1:1234>10.0.0.2:80") and the ``seq``/``ack`` they concern, so an entry can be
lined up with the segments in a trace.
"""

from __future__ import annotations

import json
from typing import Any, Iterator


class EventLog:
    """Append-only list of events, optionally bounded (oldest dropped first)."""

    def __init__(self, host: str = "", enabled: bool = True, limit: int | None = 1_000_000):
        self.host = host
        self.enabled = enabled
        self.limit = limit
        self.entries: list[dict[str, Any]] = []
        self.dropped = 0

    def record(self, now: int, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        if self.limit is not None and len(self.entries) >= self.limit:
            # Keep memory bounded: forget the oldest half at once (amortised O(1)).
            half = self.limit // 2 or 1
            del self.entries[:half]
            self.dropped += half
        entry = {"t": now, "host": self.host, "kind": kind}
        entry.update(fields)
        self.entries.append(entry)

    def filter(self, kind: str | None = None, **eq: Any) -> list[dict[str, Any]]:
        out = []
        for e in self.entries:
            if kind is not None and e["kind"] != kind:
                continue
            if all(e.get(k) == v for k, v in eq.items()):
                out.append(e)
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_jsonl(self, path_or_file) -> None:
        write_jsonl(self.entries, path_or_file)


def write_jsonl(entries, path_or_file) -> None:
    """One JSON object per line, keys sorted (so identical runs give identical files), to a
    path or an open text file."""
    def dump(f):
        for e in entries:
            f.write(json.dumps(e, default=_jsonable, sort_keys=True) + "\n")

    if hasattr(path_or_file, "write"):
        dump(path_or_file)
    else:
        with open(path_or_file, "w") as f:
            dump(f)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)
