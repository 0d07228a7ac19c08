"""A discrete-event scheduler on a virtual clock.

Time is an ``int`` of nanoseconds starting at 0. Nothing here reads a real clock: the clock
jumps straight to the next event, so a simulated two-minute TIME_WAIT costs nothing and two
runs with the same inputs execute the same callbacks in the same order.

Events live in a ``heapq`` of ``(time, seq, handle)`` tuples. ``seq`` is a per-scheduler
counter, so tuples never compare the handles (which would be slow and would not be a total
order) and events due at the same instant run first-in first-out.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable


class Handle:
    """A scheduled call. ``cancel()`` makes it a no-op; it stays in the heap until its time
    comes (lazy deletion is O(1) and the heap never needs re-sorting)."""

    __slots__ = ("when", "fn", "args")

    def __init__(self, when: int, fn: Callable[..., Any], args: tuple):
        self.when = when
        self.fn = fn
        self.args = args

    def cancel(self) -> None:
        # Dropping the references also lets the frame bytes etc. be freed early.
        self.fn = None
        self.args = ()

    @property
    def cancelled(self) -> bool:
        """True once cancelled or already run."""
        return self.fn is None

    def __repr__(self) -> str:
        state = "done/cancelled" if self.fn is None else getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<Handle t={self.when} {state}>"


class Scheduler:
    """Virtual-time event loop. ``now`` is the current time in ns."""

    __slots__ = ("now", "_heap", "_seq", "events_run")

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Handle]] = []
        self._seq = 0
        self.events_run = 0

    def call_at(self, t: int, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` at virtual time ``t``. A time in the past is clamped to ``now``
        (a deadline that has already passed is due immediately, never travels back)."""
        if t < self.now:
            t = self.now
        h = Handle(t, fn, args)
        self._seq += 1
        heappush(self._heap, (t, self._seq, h))
        return h

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` at the current instant, after what is already due now."""
        t = self.now
        h = Handle(t, fn, args)
        self._seq += 1
        heappush(self._heap, (t, self._seq, h))
        return h

    def time(self) -> int:
        """The virtual clock as a function, for code that takes a clock."""
        return self.now

    def call_later(self, dt: int, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` ``dt`` ns from now."""
        if dt < 0:
            raise ValueError(f"negative delay {dt}")
        t = self.now + dt
        h = Handle(t, fn, args)
        self._seq += 1
        heappush(self._heap, (t, self._seq, h))
        return h

    def next_time(self) -> int | None:
        """Time of the next live event, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].fn is None:
            heappop(heap)  # discard cancelled events at the head
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        """Number of scheduled entries (cancelled ones included until they are popped)."""
        return len(self._heap)

    def step(self) -> bool:
        """Run the next live event. Returns False when there was none."""
        heap = self._heap
        while heap:
            t, _, h = heappop(heap)
            fn = h.fn
            if fn is None:
                continue
            self.now = t
            args = h.args
            h.fn = None  # marks it as run; cancel() after this is harmless
            h.args = ()
            self.events_run += 1
            fn(*args)
            return True
        return False

    def run_until(self, t: int) -> int:
        """Run every event due at or before ``t``, then leave ``now == t`` (never moves the
        clock backwards). Returns the number of events run."""
        n = self._run(t, None)
        if self.now < t:
            self.now = t
        return n

    def run(self, until: int | None = None, max_events: int | None = None) -> int:
        """Run events until none are left, or up to time ``until`` (then ``now == until``
        unless ``max_events`` stopped it first). Returns the number of events run."""
        n = self._run(until, max_events)
        if until is not None and self.now < until and (max_events is None or n < max_events):
            self.now = until
        return n

    def _run(self, until: int | None, max_events: int | None) -> int:
        # The hot loop of the whole simulation: locals only, no per-event allocation.
        heap = self._heap
        pop = heappop
        n = 0
        limit = -1 if max_events is None else max_events
        while heap and n != limit:
            entry = heap[0]
            t = entry[0]
            if until is not None and t > until:
                break
            pop(heap)
            h = entry[2]
            fn = h.fn
            if fn is None:
                continue
            self.now = t
            args = h.args
            h.fn = None
            h.args = ()
            n += 1
            fn(*args)
        self.events_run += n
        return n
