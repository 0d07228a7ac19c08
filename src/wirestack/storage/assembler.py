"""Out-of-order reassembly for a byte stream (RFC 9293 §3.10.7.4, "seventh, process the
segment text": segments beyond RCV.NXT are kept until the gap before them is filled).

The assembler holds disjoint, non-adjacent ranges ``[start, end)`` of stream positions
(plain ints: the TCP engine passes unwrapped sequence numbers, so no modular arithmetic
here), each with its bytes. The same ranges are what a receiver reports as SACK blocks
(RFC 2018 §4), most recently changed first.

Memory is bounded twice: by ``max_bytes`` (the engine also only passes data inside its
receive window) and by ``max_ranges`` (a peer sending many tiny islands cannot make the
range list grow without bound). A segment that would break either bound is refused.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from ..wire.bytes_like import BytesLike


class Assembler:
    __slots__ = ("_starts", "_ends", "_data", "max_bytes", "max_ranges", "nbytes", "_recent")

    def __init__(self, max_bytes: int, max_ranges: int = 64):
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._data: list[bytearray] = []
        self.max_bytes = max_bytes
        self.max_ranges = max_ranges
        self.nbytes = 0          # bytes held
        self._recent: list[int] = []  # starts of ranges, most recently touched first (SACK)

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends))

    def insert(self, start: int, data: BytesLike) -> bool:
        """Store ``data`` at stream position ``start``. Overlaps with held data are merged
        (held bytes win; a correct peer sends the same bytes anyway). Returns False when
        the segment was refused because a bound would be exceeded."""
        n = len(data)
        if n == 0:
            return True
        end = start + n
        starts, ends, datas = self._starts, self._ends, self._data
        # first range that ends at or after `start` (could overlap or touch us)
        lo = bisect_left(ends, start)
        # one past the last range that starts at or before `end`
        hi = bisect_right(starts, end)
        if lo >= hi:  # no overlap, no adjacency: a new island
            if len(starts) >= self.max_ranges or self.nbytes + n > self.max_bytes:
                return False
            starts.insert(lo, start)
            ends.insert(lo, end)
            datas.insert(lo, bytearray(data))
            self.nbytes += n
            self._touch(start)
            return True
        new_start = starts[lo] if starts[lo] < start else start
        new_end = ends[hi - 1] if ends[hi - 1] > end else end
        held = sum(ends[k] - starts[k] for k in range(lo, hi))
        grow = (new_end - new_start) - held
        if self.nbytes + grow > self.max_bytes:
            return False
        if hi - lo == 1 and starts[lo] <= start:
            # The common case during loss recovery: the segment extends (or duplicates)
            # one range at its tail. Extend in place: amortised O(len(data)).
            if end > ends[lo]:
                datas[lo] += memoryview(data)[ends[lo] - start:]
                ends[lo] = end
        else:
            buf = bytearray(new_end - new_start)
            buf[start - new_start:end - new_start] = data
            for k in range(lo, hi):
                buf[starts[k] - new_start:ends[k] - new_start] = datas[k]
            for k in range(lo, hi):
                self._untouch(starts[k])
            starts[lo:hi] = [new_start]
            ends[lo:hi] = [new_end]
            datas[lo:hi] = [buf]
        self.nbytes += grow
        self._touch(starts[lo])
        return True

    def pop(self, pos: int) -> bytearray | memoryview | None:
        """If held data covers stream position ``pos``, remove that range and return its
        bytes from ``pos`` on; ranges wholly before ``pos`` are discarded. Else None."""
        starts = self._starts
        while starts and starts[0] <= pos:
            s = starts.pop(0)
            e = self._ends.pop(0)
            data = self._data.pop(0)
            self.nbytes -= e - s
            self._untouch(s)
            if e > pos:
                return memoryview(data)[pos - s:] if pos > s else data
        return None

    @property
    def first(self) -> int | None:
        return self._starts[0] if self._starts else None

    def sack_blocks(self, limit: int = 4, skip: int | None = None) -> list[tuple[int, int]]:
        """Up to ``limit`` blocks, the most recently changed first (RFC 2018 §4: the block
        holding the latest segment, then the most recently reported others -- with an
        immediate ACK for every out-of-order segment, "most recently changed" and "most
        recently reported" are the same order). The range starting at ``skip`` is left out
        (it was already reported, e.g. right after a D-SACK block). O(limit · log n)."""
        out = []
        starts, ends = self._starts, self._ends
        for s in self._recent:
            if s == skip:
                continue
            i = bisect_left(starts, s)
            if i < len(starts) and starts[i] == s:
                out.append((s, ends[i]))
                if len(out) >= limit:
                    break
        return out

    def covering(self, start: int, end: int) -> tuple[int, int] | None:
        """The held range that contains all of [start, end), or None. O(log n)."""
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= end:
            return self._starts[i], self._ends[i]
        return None

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()
        self._data.clear()
        self._recent.clear()
        self.nbytes = 0

    def _touch(self, start: int) -> None:
        recent = self._recent
        if recent and recent[0] == start:
            return
        if start in recent:
            recent.remove(start)
        recent.insert(0, start)
        if len(recent) > self.max_ranges:
            del recent[self.max_ranges:]

    def _untouch(self, start: int) -> None:
        try:
            self._recent.remove(start)
        except ValueError:
            pass
