"""An asyncio event loop on virtual time.

asyncio's loop waits for I/O by calling ``selector.select(timeout)``. Here the selector has
no I/O to wait for: instead it runs the simulation's events (frames crossing the wire, host
timers) up to the moment asyncio would have woken up, and moves the virtual clock there.
``loop.time()`` reads the same virtual clock, so ``asyncio.sleep``, ``asyncio.wait_for``
and the simulated network share one time line — and a two-minute wait takes no real time.
"""

from __future__ import annotations

import asyncio
import selectors


class SimulationStalled(RuntimeError):
    """Tasks are still waiting but nothing can ever wake them: no timer, no frame in flight."""


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, sched):
        self.sched = sched
        self.woken = False
        self._keys: dict = {}

    # The loop registers its self-pipe here; nothing is ever read from it in a simulation.
    def register(self, fileobj, events, data=None):
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj):
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def get_map(self):
        return self._keys

    def close(self):
        self._keys.clear()

    def select(self, timeout=None):
        sched = self.sched
        self.woken = False
        if timeout is not None and timeout <= 0:
            sched.run_until(sched.now)  # only what is due right now
            return []
        deadline = None if timeout is None else sched.now + max(1, round(timeout * 1e9))
        while True:
            t = sched.next_time()
            if t is None or (deadline is not None and t > deadline):
                break
            sched.step()
            if self.woken:
                # An application became runnable: let asyncio run it at this instant.
                sched.run_until(sched.now)
                return []
        if deadline is None:
            raise SimulationStalled(
                "the simulation is stalled: tasks are waiting, but no timer is set and no "
                "frame is in flight, so nothing can ever wake them")
        sched.now = max(sched.now, deadline)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``asyncio`` on the simulation clock (integer ns in ``sched.now``)."""

    def __init__(self, sched):
        self._vselector = _VirtualSelector(sched)
        super().__init__(selector=self._vselector)
        self.sched = sched

    def time(self) -> float:
        return self.sched.now / 1e9

    def wake(self) -> None:
        """Called when a simulated event made an application runnable."""
        self._vselector.woken = True
