"""The one loop that drives a sans-I/O host, for the simulated and the real-time runtime.

Both runtimes do the same thing each time the host may have something to say: ask it for
its output at ``now`` (``host.transmit(now)``), hand each frame to the device of its
interface, then ask when it next needs attention (``host.poll_at()``) and keep one timer
armed for that moment.  What differs is given as arguments: the clock, the send function
of each interface's device, how to run a function soon and at a time, and the timer
policy:

* virtual time (``exact=True``): the timer fires exactly at the host's deadline and is
  re-armed whenever the deadline moves, so the events of a run stay in the same order
  from run to run and no wake-up is wasted;
* real time (``exact=False``): a timer that fires no later than needed is kept.  The
  retransmission deadline moves with every ACK; cancelling and allocating a loop timer per
  batch costs more than an early firing, which just polls and re-arms.  And a ``kick()``
  made while the host is transmitting (an application callback writing from inside the
  poll) schedules nothing: the running transmit sends what it wrote, and whatever is still
  due afterwards shows in ``poll_at()``, which arms the timer -- one loop turn saved per
  request answered that way.

Either way a deadline already due is served ``soonest`` ns later, never in a spin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..iface import Host


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


FrameTap = Callable[[int, str, bytes], object]   # fn(now_ns, 'rx' | 'tx', frame)


class Driver:
    """Serves ``host``: ``kick()`` asks for a service soon (once, however many ask),
    ``service()`` runs one at once, ``stop()`` cancels the timer and ignores what is queued."""

    __slots__ = ("host", "clock", "sends", "taps", "_soon", "_at", "soonest", "exact",
                 "active", "_pending", "_timer", "_timer_at", "_transmitting", "_send_error")

    def __init__(self, host: Host, clock: Callable[[], int],
                 sends: list[Callable[[bytes], object]],
                 call_soon: Callable[[Callable[[], None]], Any],
                 call_at: Callable[[int, Callable[[], None]], TimerHandle], *,
                 soonest: int, exact: bool, taps: list[FrameTap] | None = None):
        self.host = host
        self.clock = clock            # now, in ns (virtual or monotonic)
        self.sends = sends            # sends[i](frame): out of interface i's device
        self.taps = taps if taps is not None else []   # each sees every frame sent
        self._soon = call_soon        # run a function at the current instant
        self._at = call_at            # run a function at a time in ns; returns a handle
        self.soonest = soonest        # how long after now a deadline already due is served
        self.exact = exact
        self.active = True
        self._pending = False
        self._timer: TimerHandle | None = None
        self._timer_at: int | None = None
        self._transmitting = False
        self._send_error: OSError | None = None   # a failed send_now, raised by service()

    def kick(self) -> None:
        """Have the host transmit at the current instant (once, however many asked)."""
        if not self._pending and not (self._transmitting and not self.exact):
            self._pending = True
            self._soon(self.service)

    def service(self) -> None:
        self._pending = False
        if not self.active:
            return   # a kick() queued before stop(): the devices may be closed
        if self._send_error is not None:
            err, self._send_error = self._send_error, None
            raise err
        now = self.clock()
        self._transmitting = True
        try:
            out = self.host.transmit(now)
        finally:
            self._transmitting = False
        self._write(out, now)
        t = self.host.poll_at()
        if t is None:
            return
        due = t if t >= now + self.soonest else now + self.soonest
        if self.exact:
            if self._timer_at == due:
                return
            self._timer_at = due
        else:
            at = self._timer_at
            if at is not None and at <= t:
                return   # the armed timer fires no later than needed: keep it
            self._timer_at = t
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._at(due, self._on_timer)

    def send_now(self) -> None:
        """Write what the host has queued at once, between two services (its answer to a
        SYN, see ``TcpLayer.push_output``); the service that follows arms the timer.  This
        runs inside the host's input, which must not end half-way: a write that fails here
        is raised by that next service instead, where a failed write always surfaces."""
        if self.active:
            try:
                self._write(self.host.take_output(), self.clock())
            except OSError as e:
                self._send_error = e

    def _write(self, out: list[tuple[int, bytes]], now: int) -> None:
        sends = self.sends
        taps = self.taps
        for ifindex, frame in out:
            if taps:
                for tap in taps:
                    tap(now, "tx", frame)
            sends[ifindex](frame)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.service()

    def stop(self) -> None:
        self.active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None

    def start(self) -> None:
        self.active = True
