"""Capture points that tell the truth, written as pcapng with the wire's decision per packet.

Two kinds of capture point, as on a real network:

* **a medium** (link or hub; for a switch, each of its links): every frame as it was put on
  the wire, stamped when it was handed to the medium, *including* frames the wire then lost,
  corrupted or duplicated; the packet comment says what happened ("#17 lost: loss p=0.10");
* **a NIC** (tcpdump on that host): what the host sent (stamped when sent) and what its
  adapter accepted (stamped when the last bit arrived). A frame the wire lost, or the NIC
  dropped for a bad FCS, never appears at the receiver.

Every comment starts with the frame's decision-log id ("#17"), the number `--kill 17`,
`net.decisions.why(17)` and the ladder use. Comments are written once the wire has decided:
packets are held ``hold`` ns of virtual time (default 5 s) before they are written, so a
late decision (a collision, an FCS drop at the receiver) still makes it into the comment.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from ..units import SEC
from .fate import summary
from .pcapng import PcapngWriter


class Capture:
    """A pcapng capture at one or more points; ``decisions`` is the network's DecisionLog.

    ``medium(m)`` or ``nic(n)`` add capture points (each NIC is its own pcapng interface,
    the medium is one); ``close()`` writes what is still held and closes the file."""

    def __init__(self, file_or_path, decisions, names: list[str], hold: int = 5 * SEC):
        self.writer = PcapngWriter(file_or_path, interfaces=names)
        self.names = list(names)
        self.hold = hold
        self.decisions = decisions
        self._notes: OrderedDict[int, list] = OrderedDict()
        self._held: deque = deque()     # (t, fid, frame, interface, direction)
        self.closed = False
        decisions.add_watcher(self._on_decision)

    @property
    def count(self) -> int:
        return self.writer.count + len(self._held)

    # -- attaching -------------------------------------------------------------------------
    def medium(self, medium, interface: int = 0) -> None:
        links = getattr(medium, "links", None)
        for m in (links if links is not None else [medium]):
            m.add_frame_tap(lambda now, fid, src, data, i=interface: self._add(now, fid, data[:-4], i, None))

    def nic(self, nic, interface: int) -> None:
        nic.add_frame_tap(lambda now, direction, fid, frame, i=interface: self._add(now, fid, frame, i, direction))

    # -- recording -------------------------------------------------------------------------
    def _on_decision(self, entry) -> None:
        for key in (entry["frame"], entry.get("parent")):
            if key is not None:
                notes = self._notes.get(key)
                if notes is None:
                    notes = self._notes[key] = []
                notes.append(entry)

    def _add(self, now: int, fid, frame, interface: int, direction) -> None:
        if self.closed:
            return
        self._held.append((now, fid, bytes(frame), interface, direction))
        self._flush(now - self.hold)

    def _flush(self, before: int | None) -> None:
        held = self._held
        notes = self._notes
        wrote = False
        while held and (before is None or held[0][0] < before):
            t, fid, frame, interface, direction = held.popleft()
            comment = None
            if fid is not None:
                text = summary(notes.get(fid, ()), fid)
                comment = f"#{fid}" + (f" {text}" if text else "")
            self.writer.write(t, frame, comment=comment, interface=interface, direction=direction)
            wrote = True
        # Forget notes about frames that can no longer be written (bounded memory): a
        # frame still in flight two hold times after its last decision is not expected.
        if before is not None:
            horizon = before - self.hold
            while notes:
                first = next(iter(notes.values()))
                if first[-1]["t"] >= horizon:
                    break
                notes.popitem(last=False)
        if wrote:
            self.writer.flush()

    def close(self) -> None:
        if self.closed:
            return
        self._flush(None)
        self.closed = True
        self.decisions.remove_watcher(self._on_decision)
        self.writer.close()


def capture_format(path) -> str:
    """"pcapng" when the file name says so (or for "-", a stream), else classic "pcap"."""
    p = str(path)
    return "pcapng" if p == "-" or p.endswith(".pcapng") or p.endswith(".ntar") else "pcap"
