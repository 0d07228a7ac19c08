"""IPv4 fragmentation (RFC 791 §3.2) and bounded reassembly (RFC 815's hole idea, kept as
a sorted list of received ranges)."""

from __future__ import annotations

from ..units import SEC


def fragment_sizes(payload_len: int, mtu: int, header_len: int = 20) -> list[tuple[int, int]]:
    """(offset, length) of each fragment's data. Every fragment but the last carries a
    multiple of 8 bytes, because the offset field counts 8-byte units."""
    per = (mtu - header_len) // 8 * 8
    if per <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    return [(off, min(per, payload_len - off)) for off in range(0, payload_len, per)]


class _Datagram:
    __slots__ = ("buf", "ranges", "total", "size", "deadline", "first_header")

    def __init__(self, deadline: int):
        self.buf = bytearray()
        self.ranges: list[list[int]] = []   # merged [start, end) ranges received
        self.total: int | None = None       # known once the last fragment (MF=0) arrived
        self.size = 0
        self.deadline = deadline
        self.first_header: bytes | None = None  # kept to quote in ICMP time exceeded


class Reassembler:
    """Collects fragments keyed by (src, dst, proto, ident) (RFC 791). Memory is bounded by
    ``max_bytes`` over all datagrams and ``max_datagrams``; a datagram not complete after
    ``timeout`` is dropped (RFC 1122 §3.3.2 recommends 60-120 s; Linux uses 30 s)."""

    def __init__(self, timeout: int = 30 * SEC, max_bytes: int = 256 * 1024,
                 max_datagrams: int = 64, counters=None):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.counters = counters
        self.pending: dict[tuple, _Datagram] = {}
        self.bytes_held = 0

    def _count(self, name: str) -> None:
        if self.counters is not None:
            self.counters.incr(name)

    def add(self, key: tuple, offset: int, data, more: bool, header: bytes, now: int):
        """Add one fragment. Returns the whole payload when complete, else None."""
        d = self.pending.get(key)
        if d is None:
            if len(self.pending) >= self.max_datagrams:
                self._count("ip.reasm_fails")
                self._evict_oldest()
            d = self.pending[key] = _Datagram(now + self.timeout)
        end = offset + len(data)
        if end > 65535 - 20:
            self._drop(key, "ip.reasm_fails")
            return None
        if not more:
            if d.total is not None and d.total != end:
                self._drop(key, "ip.reasm_fails")  # two different "last" fragments
                return None
            d.total = end
        if offset == 0:
            d.first_header = header
        grow = max(0, end - len(d.buf))
        if self.bytes_held + grow > self.max_bytes:
            self._count("ip.reasm_overflow")
            self._drop(key, "ip.reasm_fails")
            return None
        if grow:
            d.buf.extend(bytes(grow))
            self.bytes_held += grow
        d.buf[offset:end] = data
        _merge(d.ranges, offset, end)
        if d.total is not None and len(d.ranges) == 1 and d.ranges[0][0] == 0 and d.ranges[0][1] >= d.total:
            del self.pending[key]
            self.bytes_held -= len(d.buf)
            self._count("ip.reasm_oks")
            return bytes(d.buf[:d.total])
        return None

    def expire(self, now: int) -> list[tuple[tuple, bytes | None]]:
        """Drop timed-out datagrams; returns (key, first_header) of each for ICMP time exceeded
        (sent only when fragment zero had arrived, RFC 792)."""
        out = []
        for key, d in list(self.pending.items()):
            if d.deadline <= now:
                out.append((key, d.first_header))
                self._drop(key, "ip.reasm_timeout")
        return out

    def next_deadline(self) -> int | None:
        if not self.pending:
            return None
        return min(d.deadline for d in self.pending.values())

    def _drop(self, key, counter: str) -> None:
        d = self.pending.pop(key, None)
        if d is not None:
            self.bytes_held -= len(d.buf)
            self._count(counter)

    def _evict_oldest(self) -> None:
        key = min(self.pending, key=lambda k: self.pending[k].deadline)
        self._drop(key, "ip.reasm_evicted")


def _merge(ranges: list[list[int]], start: int, end: int) -> None:
    """Insert [start, end) into a sorted list of disjoint ranges, merging neighbours."""
    i = 0
    n = len(ranges)
    while i < n and ranges[i][1] < start:
        i += 1
    j = i
    while j < n and ranges[j][0] <= end:
        start = min(start, ranges[j][0])
        end = max(end, ranges[j][1])
        j += 1
    ranges[i:j] = [[start, end]]
