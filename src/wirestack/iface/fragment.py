"""IPv4 fragmentation (RFC 791 §3.2) and bounded reassembly (RFC 815's hole idea, kept as
a sorted list of the received pieces), hardened against hostile fragments: memory charged
by bytes held, per-source shares, conflicting overlaps discarded (RFC 1858, RFC 3128)."""

from __future__ import annotations

from bisect import bisect_right

from ..units import SEC


def fragment_sizes(payload_len: int, mtu: int, header_len: int = 20) -> list[tuple[int, int]]:
    """(offset, length) of each fragment's data. Every fragment but the last carries a
    multiple of 8 bytes, because the offset field counts 8-byte units."""
    per = (mtu - header_len) // 8 * 8
    if per <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    return [(off, min(per, payload_len - off)) for off in range(0, payload_len, per)]


class _Datagram:
    __slots__ = ("src", "starts", "pieces", "total", "have", "held", "deadline", "first_header")

    def __init__(self, src: bytes, deadline: int):
        self.src = src
        self.starts: list[int] = []         # sorted start offsets of the pieces below
        self.pieces: list[bytes] = []       # disjoint received data, in offset order
        self.total: int | None = None       # known once the last fragment (MF=0) arrived
        self.have = 0                       # data bytes received (no byte counted twice)
        self.held = 0                       # what the budget is charged: data + per-piece cost
        self.deadline = deadline
        self.first_header: bytes | None = None  # kept to quote in ICMP time exceeded


class Reassembler:
    """Collects fragments keyed by (src, dst, proto, ident) (RFC 791).

    Memory is charged by what a pending datagram really holds -- its received bytes plus
    ``PIECE_COST`` per stored piece -- not by its highest offset, so a few tiny fragments
    far out cannot pin the budget. ``max_bytes`` and ``max_datagrams`` bound the whole;
    one source may hold at most ``max_bytes_per_source``. When room is needed the victim
    is the oldest datagram of the source holding the most (bytes, or datagrams when the
    count is the limit), so a flood from one source evicts its own fragments first and
    another source's datagram still completes. A datagram not complete after ``timeout``
    is dropped (RFC 1122 §3.3.2 recommends 60-120 s; Linux uses 30 s)."""

    PIECE_COST = 64   # bookkeeping charged per stored piece (like a kernel's truesize)

    def __init__(self, timeout: int = 30 * SEC, max_bytes: int = 256 * 1024,
                 max_datagrams: int = 64, counters=None, max_bytes_per_source: int | None = None):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.max_bytes_per_source = (max_bytes // 2 if max_bytes_per_source is None
                                     else max_bytes_per_source)
        self.counters = counters
        self.pending: dict[tuple, _Datagram] = {}   # insertion order = age
        self.bytes_held = 0
        self._by_source: dict[bytes, list[int]] = {}  # src -> [bytes held, datagrams]

    def _count(self, name: str) -> None:
        if self.counters is not None:
            self.counters.incr(name)

    def add(self, key: tuple, offset: int, data, more: bool, header: bytes, now: int):
        """Add one fragment. Returns the whole payload when complete, else None."""
        n = len(data)
        end = offset + n
        if more and n % 8:
            # RFC 791: every fragment but the last carries a multiple of 8 bytes (the
            # next offset could not be expressed otherwise). Malformed: drop it alone.
            self._count("ip.frag_bad_length")
            return None
        d = self.pending.get(key)
        if end > 65535 - 20 or (not more and d is not None and d.total is not None
                                and d.total != end):
            # Beyond the largest datagram, or two different "last" fragments.
            self._remove(key)
            self._count("ip.reasm_fails")
            return None
        if d is None:
            src = key[0]
            if len(self.pending) >= self.max_datagrams:
                self._evict(by_count=True)
            d = self.pending[key] = _Datagram(src, now + self.timeout)
            acct = self._by_source.get(src)
            if acct is None:
                acct = self._by_source[src] = [0, 0]
            acct[1] += 1
        if not more:
            if d.starts and d.starts[-1] + len(d.pieces[-1]) > end:
                self._drop(key, "ip.reasm_fails")   # data beyond the announced end
                return None
            d.total = end
        elif d.total is not None and end > d.total:
            self._drop(key, "ip.reasm_fails")
            return None
        if offset == 0:
            d.first_header = header
        gaps = self._gaps(d, offset, end, data)
        if gaps is None:
            # RFC 1858 §4 / RFC 3128: an overlap that rewrites bytes is an attack on
            # filters that judged the first copy; no version of the datagram is trusted.
            self._drop(key, "ip.reasm_overlap_conflicts")
            self._count("ip.reasm_fails")
            return None
        if not gaps:
            self._count("ip.reasm_duplicates")
        else:
            cost = sum(e - s for s, e in gaps) + self.PIECE_COST * len(gaps)
            if not self._make_room(d, cost):
                self._drop(key, "ip.reasm_fails")
                return None
            mv = memoryview(data)
            for s, e in gaps:
                i = bisect_right(d.starts, s)
                d.starts.insert(i, s)
                d.pieces.insert(i, bytes(mv[s - offset:e - offset]))
                d.have += e - s
            self._charge(d, cost)
        if d.total is not None and d.have == d.total:
            whole = b"".join(d.pieces)
            self._remove(key)
            self._count("ip.reasm_oks")
            return whole
        return None

    @staticmethod
    def _gaps(d: _Datagram, offset: int, end: int, data):
        """The parts of [offset, end) not yet held, as (start, end) pairs; None when the
        fragment overlaps held data with different bytes."""
        starts, pieces = d.starts, d.pieces
        i = bisect_right(starts, offset) - 1
        if i < 0 or starts[i] + len(pieces[i]) <= offset:
            i += 1
        gaps = []
        cur = offset
        mv = memoryview(data)
        while i < len(starts) and starts[i] < end:
            s = starts[i]
            p = pieces[i]
            e = s + len(p)
            lo = s if s > offset else offset
            hi = e if e < end else end
            if p[lo - s:hi - s] != mv[lo - offset:hi - offset]:
                return None
            if s > cur:
                gaps.append((cur, s))
            if e > cur:
                cur = e
            i += 1
        if cur < end:
            gaps.append((cur, end))
        return gaps

    def _charge(self, d: _Datagram, cost: int) -> None:
        d.held += cost
        self.bytes_held += cost
        self._by_source[d.src][0] += cost

    def _make_room(self, d: _Datagram, cost: int) -> bool:
        """Evict until ``cost`` more bytes fit for ``d``'s source and overall. False when
        ``d`` itself would have to go (it alone exceeds its source's share)."""
        acct = self._by_source[d.src]
        if (acct[0] + cost > self.max_bytes_per_source
                or self.bytes_held + cost > self.max_bytes):
            self._count("ip.reasm_overflow")    # the budget is full: someone must go
        while acct[0] + cost > self.max_bytes_per_source:
            victim = self._oldest_of(d.src, not_this=d)
            if victim is None:
                return False
            self._drop(victim, "ip.reasm_evicted")
        while self.bytes_held + cost > self.max_bytes:
            victim = self._victim(by_count=False, not_this=d)
            if victim is None:
                return False
            self._drop(victim, "ip.reasm_evicted")
        return True

    def _evict(self, by_count: bool) -> None:
        victim = self._victim(by_count)
        if victim is not None:
            self._drop(victim, "ip.reasm_evicted")

    def _victim(self, by_count: bool, not_this: _Datagram | None = None):
        """The oldest datagram of the source that holds the most bytes (or datagrams)."""
        which = 1 if by_count else 0
        order = sorted(self._by_source.items(), key=lambda kv: kv[1][which], reverse=True)
        for src, _ in order:
            key = self._oldest_of(src, not_this)
            if key is not None:
                return key
        return None

    def _oldest_of(self, src: bytes, not_this: _Datagram | None = None):
        for key, d in self.pending.items():
            if d.src == src and d is not not_this:
                return key
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

    def _remove(self, key) -> _Datagram | None:
        d = self.pending.pop(key, None)
        if d is not None:
            self.bytes_held -= d.held
            acct = self._by_source[d.src]
            acct[0] -= d.held
            acct[1] -= 1
            if acct[1] == 0:
                del self._by_source[d.src]
        return d

    def _drop(self, key, counter: str) -> None:
        if self._remove(key) is not None:
            self._count(counter)

