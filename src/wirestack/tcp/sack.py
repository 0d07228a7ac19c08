"""The SACK sender's scoreboard (RFC 6675 §3, §4) over unwrapped sequence numbers.

The scoreboard keeps what the receiver's SACK blocks (RFC 2018 §3) have told us: disjoint,
non-adjacent ranges ``[start, end)`` above SND.UNA (HighACK in RFC 6675 terms), sorted.
RFC 6675 states its routines octet by octet; here every routine works on whole ranges, so
the cost is O(number of ranges) -- never O(bytes) -- and nothing at all when no SACK
block ever arrived (the engine does not even call in then).

Why ranges suffice: IsLost(octet) depends only on the SACKed data *above* the octet, and
all octets of one hole (the gap between two SACKed ranges) have the same SACKed data above
them. So the lost octets are exactly those below one boundary, ``lost_edge``, which is the
start of a SACKed range (or HighACK when nothing is lost); pipe (SetPipe) is then two sums
of un-SACKed bytes over intervals.

Memory is bounded by ``max_ranges``: an island beyond it is ignored. Ignoring SACK
information is always safe (RFC 2018 §8: the sender keeps all data until it is cumulatively
acknowledged), it only makes recovery less precise.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from .seq import unwrap, wrap

DUP_THRESH = 3          # RFC 6675 §2 DupThresh


class Scoreboard:
    __slots__ = ("starts", "ends", "sacked", "max_ranges", "ignored")

    def __init__(self, max_ranges: int = 64):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.sacked = 0             # bytes covered by the ranges
        self.max_ranges = max_ranges
        self.ignored = 0            # blocks dropped (malformed, stale or over the bound)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __len__(self) -> int:
        return len(self.starts)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends))

    @property
    def high(self) -> int | None:
        """One past the highest SACKed octet (None when nothing is SACKed)."""
        return self.ends[-1] if self.ends else None

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()
        self.sacked = 0

    # ------------------------------------------------------------------ Update()
    def update(self, blocks: Sequence[tuple[int, int]], una: int,
               snd_max: int) -> tuple[bool, bool]:
        """RFC 6675 §4 Update(): merge the 32-bit (left, right) blocks of one ACK.
        Blocks are unwrapped next to SND.UNA. A block that ends at or below SND.UNA, or
        lies inside what is already SACKed, is a D-SACK (RFC 2883 §4) and adds nothing; a
        block reaching past SND.MAX or with right <= left is invalid (RFC 2018 §3) and
        ignored. Returns (new information, first block was a D-SACK)."""
        new = False
        dsack = False
        first = True
        second = None
        if len(blocks) > 1:
            second = blocks[1]
        for left, right in blocks:
            s = unwrap(left, una)
            e = unwrap(right, una)
            if e <= s or e > snd_max:
                self.ignored += 1
                first = False
                continue
            if e <= una:
                if first:
                    dsack = True     # RFC 2883 §4: first block below the cumulative ACK
                first = False
                continue
            if s < una:
                s = una
            if first and second is not None and self._in_block(left, right, second, una):
                dsack = True         # RFC 2883 §4: a duplicate inside SACKed data, reported
                                     # first and followed by the block that holds it
            elif self._add(s, e):
                new = True
            first = False
        return new, dsack

    @staticmethod
    def _in_block(left: int, right: int, block: tuple[int, int], una: int) -> bool:
        """[left, right) lies inside ``block`` (32-bit numbers, compared as offsets from
        SND.UNA; a receiver repeats a block only for this). A first block that is merely
        already known is no D-SACK: after an ACK that advanced, RFC 2018 §4 lets any
        recent block come first."""
        bl = wrap(block[0] - una)
        br = wrap(block[1] - una)
        l = wrap(left - una)
        r = wrap(right - una)
        return bl <= l and r <= br

    def _add(self, s: int, e: int) -> bool:
        starts, ends = self.starts, self.ends
        lo = bisect_left(ends, s)        # first range ending at/after s (overlap or touch)
        hi = bisect_right(starts, e)     # one past the last range starting at/before e
        if lo >= hi:
            if len(starts) >= self.max_ranges:
                self.ignored += 1
                return False
            starts.insert(lo, s)
            ends.insert(lo, e)
            self.sacked += e - s
            return True
        ns = starts[lo] if starts[lo] < s else s
        ne = ends[hi - 1] if ends[hi - 1] > e else e
        held = 0
        for k in range(lo, hi):
            held += ends[k] - starts[k]
        grow = (ne - ns) - held
        if grow == 0 and hi - lo == 1:
            return False
        starts[lo:hi] = [ns]
        ends[lo:hi] = [ne]
        self.sacked += grow
        return True

    def advance(self, una: int) -> None:
        """SND.UNA moved up: forget what it now covers (RFC 6675 §4: HighACK)."""
        starts, ends = self.starts, self.ends
        n = 0
        gone = 0
        while n < len(starts) and ends[n] <= una:
            gone += ends[n] - starts[n]
            n += 1
        if n:
            del starts[:n]
            del ends[:n]
        if starts and starts[0] < una:
            gone += una - starts[0]
            starts[0] = una
        self.sacked -= gone

    # ------------------------------------------------------------------ queries
    def sacked_between(self, a: int, b: int) -> int:
        """SACKed bytes inside [a, b)."""
        if a >= b or not self.starts:
            return 0
        starts, ends = self.starts, self.ends
        i = bisect_right(ends, a)
        total = 0
        n = len(starts)
        while i < n and starts[i] < b:
            s = starts[i] if starts[i] > a else a
            e = ends[i] if ends[i] < b else b
            total += e - s
            i += 1
        return total

    def lost_edge(self, una: int, mss: int) -> int:
        """The IsLost() boundary (RFC 6675 §4): every un-SACKed octet below it is lost.
        An octet is lost when DupThresh discontiguous SACKed ranges, or more than
        (DupThresh - 1) * SMSS SACKed bytes, lie above it. Walking down from the top
        range, one of the two holds after at most DupThresh ranges: O(1)."""
        starts, ends = self.starts, self.ends
        k = len(starts)
        above = 0
        limit = (DUP_THRESH - 1) * mss
        for j in range(1, DUP_THRESH + 1):
            i = k - j
            if i < 0:
                break
            above += ends[i] - starts[i]
            if j >= DUP_THRESH or above > limit:
                return starts[i]
        return una

    def is_lost(self, seq: int, una: int, mss: int) -> bool:
        return seq < self.lost_edge(una, mss) and not self.is_sacked(seq)

    def is_sacked(self, seq: int) -> bool:
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and seq < self.ends[i]

    def sacked_end(self, seq: int) -> int | None:
        """If ``seq`` is SACKed, the end of its range, else None."""
        i = bisect_right(self.starts, seq) - 1
        if i >= 0 and seq < self.ends[i]:
            return self.ends[i]
        return None

    def next_start_after(self, seq: int) -> int | None:
        """The start of the first SACKed range above ``seq`` (where a hole ends)."""
        i = bisect_right(self.starts, seq)
        return self.starts[i] if i < len(self.starts) else None

    def pipe(self, una: int, snd_max: int, high_rxt: int, mss: int, edge: int | None = None) -> int:
        """SetPipe() (RFC 6675 §4): each un-SACKed octet in [HighACK, HighData] counts
        once if it is not lost, and once more if it was retransmitted (below HighRxt)."""
        if edge is None:
            edge = self.lost_edge(una, mss)
        if edge < una:
            edge = una
        p = (snd_max - edge) - self.sacked_between(edge, snd_max)
        if high_rxt > snd_max:
            high_rxt = snd_max
        if high_rxt > una:
            p += (high_rxt - una) - self.sacked_between(una, high_rxt)
        return p

    def first_hole(self, frm: int, limit: int) -> int | None:
        """The smallest un-SACKed sequence number >= ``frm`` and < ``limit``."""
        end = self.sacked_end(frm)
        if end is not None:
            frm = end
        return frm if frm < limit else None
