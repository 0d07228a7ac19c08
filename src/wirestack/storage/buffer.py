"""A bounded FIFO of bytes: the TCP send and receive buffers.

Data is appended at the tail and consumed from the head. Consuming only moves an offset;
the consumed prefix is cut off in one ``del`` once it is at least half of the storage, so
every byte is moved at most once more on average (amortised O(1) per byte, no O(n) shift
per segment).
"""

from __future__ import annotations

from ..wire.bytes_like import BytesLike

_COMPACT_MIN = 64 * 1024  # below this, compacting is not worth a memmove


class ByteFifo:
    __slots__ = ("_buf", "_head", "capacity")

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf = bytearray()
        self._head = 0
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self._buf) - self._head

    def __bool__(self) -> bool:
        return len(self._buf) > self._head

    @property
    def free(self) -> int:
        return self.capacity - (len(self._buf) - self._head)

    def append(self, data: BytesLike) -> int:
        """Append as much of ``data`` as fits; return how many bytes were taken."""
        room = self.capacity - (len(self._buf) - self._head)
        n = len(data)
        if n > room:
            if room <= 0:
                return 0
            data = memoryview(data)[:room]
            n = room
        self._buf += data
        return n

    def peek(self, offset: int, n: int) -> bytearray:
        """Up to ``n`` bytes starting ``offset`` bytes after the head (a copy)."""
        start = self._head + offset
        return self._buf[start:start + n]

    def consume(self, n: int) -> None:
        """Forget the first ``n`` bytes."""
        head = self._head + n
        buf = self._buf
        if head >= len(buf):
            buf.clear()
            self._head = 0
        elif head >= _COMPACT_MIN and head * 2 >= len(buf):
            del buf[:head]
            self._head = 0
        else:
            self._head = head

    def read(self, n: int) -> bytes:
        """Remove and return up to ``n`` bytes from the head."""
        start = self._head
        data = bytes(self._buf[start:start + n])
        self.consume(len(data))
        return data

    def clear(self) -> None:
        self._buf = bytearray()
        self._head = 0
