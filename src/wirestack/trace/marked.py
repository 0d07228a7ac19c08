"""A tcpdump-style trace of a simulated medium where every line says what the wire did.

    #27    1.509081 IP 198.18.0.1.61145 > 198.18.0.2.5001: Flags [S], ... length 0  [LOST on the wire]

Each line starts with the frame's id in the network's decision log (``net.decisions.why(27)``
tells the whole story) and ends with the fates the medium decided as it took the frame:
lost, corrupted, duplicated, reordered, dropped by a full queue ... A medium's taps see a
frame before its fate is drawn, so a line is finished when the next frame comes (or at
``flush()``).
"""

from __future__ import annotations

import itertools

from .text import TextTrace

FATES = {"dropped_loss": "LOST on the wire", "corrupted": "corrupted", "duplicated": "duplicated",
         "reordered": "reordered", "queue_overflow": "dropped: queue full", "truncated": "truncated",
         "mtu_exceeded": "dropped: larger than the MTU", "link_down": "dropped: link down"}


class MarkedTrace:
    """``on_line(now, line, fates)`` for every frame on the media it taps: ``fates`` are the
    decision-log events of that frame (``"dropped_loss"`` ...), ``line`` already marked."""

    def __init__(self, log, on_line, relative: bool = True):
        self.log = log
        self.on_line = on_line
        self.tracer = TextTrace(relative=relative)
        # (now, frame id, line, decision-log length when it was seen)
        self._pending: tuple[int, int, str, int] | None = None

    def __call__(self, now: int, frame) -> None:   # a medium's tap
        self.flush()
        fid = self.log.last_id
        self._pending = (now, fid, f"#{fid:<5} " + self.tracer.format(frame, now), len(self.log.entries))

    def flush(self) -> None:
        if self._pending is None:
            return
        now, fid, line, seen = self._pending
        self._pending = None
        entries = self.log.entries
        new = max(0, len(entries) - seen)     # entries recorded since: only look at those
        fates = [e["event"] for e in itertools.islice(reversed(entries), new) if e["frame"] == fid][::-1]
        marks = [FATES[e] for e in fates if e in FATES]
        if marks:
            line += "  [" + ", ".join(marks) + "]"
        self.on_line(now, line, fates)
