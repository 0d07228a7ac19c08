"""A FIFO with a fixed maximum length that refuses (rather than evicts) when full:
the listen backlog's accept queue."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    __slots__ = ("_items", "maxlen")

    def __init__(self, maxlen: int):
        if maxlen < 0:
            raise ValueError("maxlen must be >= 0")
        self._items: deque[T] = deque()
        self.maxlen = maxlen

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.maxlen

    def put(self, item: T) -> bool:
        """Append ``item``; False (and nothing stored) when the queue is full."""
        if len(self._items) >= self.maxlen:
            return False
        self._items.append(item)
        return True

    def get(self) -> T | None:
        """Remove and return the oldest item, or None when empty."""
        return self._items.popleft() if self._items else None

    def remove(self, item: T) -> None:
        try:
            self._items.remove(item)
        except ValueError:
            pass

    def clear(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items
