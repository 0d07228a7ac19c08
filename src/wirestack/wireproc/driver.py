"""Run the simulation's media on the real clock.

The media in :mod:`wirestack.sim.media` only ever ask their scheduler two things:
``sched.now`` and ``sched.call_at(t, fn, *args)``. So the real-time wire needs no second
implementation of links, hubs, switches or impairments: it keeps an ordinary
:class:`~wirestack.sim.scheduler.Scheduler` and moves its clock forward to the real time
(monotonic ns since the wire started) before every frame it injects and whenever the
next scheduled event is due, which one asyncio timer waits for.

Because the scheduler's clock only jumps to "now" before a frame is put on a medium,
the medium sees exactly what a simulation would see if the frames had been sent at
those instants: the same random draws in the same order, the same queueing arithmetic,
the same CSMA/CD carrier sense and backoff. What real time adds is lateness: an event due
at t runs when the process gets to it (usually well under a millisecond later), and the
frame is written out then; the decision log keeps the scheduled time t.

A *station* is one attachment point on a medium (a simulated NIC in promiscuous mode);
a port adapter (wireproc/ports.py) binds a peer -- a socket client, a TAP, a pcap file --
to a station, and frees it again when the peer goes away.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ..sim import DecisionLog, Hub, Link, LinkParams, Nic, Scheduler, Switch
from ..trace.counters import Counters

MAX_STATIONS = 64    # per medium: the hub's and switch's tables grow with stations


class WireFull(Exception):
    """No free station on the medium (a link has exactly two ends)."""


class Station:
    """One attachment point on a medium: a simulated NIC plus whoever is plugged into it."""

    __slots__ = ("name", "medium", "nic", "peer", "label", "owner")

    def __init__(self, name: str, medium: "Medium", nic: Nic, owner: str | None = None):
        self.name = name            # the NIC's name, as it appears in the decision log
        self.medium = medium
        self.nic = nic
        self.peer: Callable[[bytes], Any] | None = None   # fn(frame) that writes it out
        self.label = name           # the peer's label (port and client number) while bound
        self.owner = owner          # the port that created it (hub/switch stations are reused per port)
        nic.on_receive = self._receive

    def _receive(self, frame: bytes) -> None:
        peer = self.peer
        if peer is not None:
            peer(frame)
        else:
            self.medium.wire.counters.incr("wire.rx_no_peer")

    def __repr__(self) -> str:
        return f"<Station {self.name} on {self.medium.name} peer={self.label if self.peer else None}>"


class Medium:
    """One medium of the wire (link, hub or switch) and its pool of stations."""

    def __init__(self, wire: "RealtimeWire", name: str, kind: str, *, params: LinkParams | None = None,
                 b_to_a: LinkParams | None = None, csma_cd: bool = False, rate_bps: int | None = None,
                 check_fcs: bool = True, queue_limit: int = 1000):
        if kind not in ("link", "hub", "switch"):
            raise ValueError(f"medium kind must be link, hub or switch, not {kind!r}")
        self.wire = wire
        self.name = name
        self.kind = kind
        self.check_fcs = check_fcs
        self.params = params or LinkParams()
        self.free: list[Station] = []
        self.stations: list[Station] = []
        self.obj: Link | Hub | Switch    # the simulated medium itself, by kind
        sched, log, seed = wire.sched, wire.log, wire.seed
        if kind == "link":
            a = self._nic(f"{name}.a")
            b = self._nic(f"{name}.b")
            # Named after the medium, so each direction's random stream depends only on
            # (seed, medium name, direction), not on what is plugged in.
            self.obj = Link(sched, a, b, self.params, b_to_a, seed=seed, log=log, name=name)
            self.free = [Station(a.name, self, a), Station(b.name, self, b)]
            self.stations = list(self.free)
        elif kind == "hub":
            # A hub has no impairments; of the link parameters only the queue applies (each
            # station's transmit queue).
            self.obj = Hub(sched, csma_cd=csma_cd, rate_bps=rate_bps or 10_000_000, log=log,
                           seed=seed, name=name,
                           queue_limit=params.queue_limit if params is not None else queue_limit)
        else:
            self.obj = Switch(sched, name=name, log=log, seed=seed)

    def _nic(self, name: str) -> Nic:
        # Promiscuous: behind a station may be a bridge, a VM or a kernel with several
        # addresses; the peer filters by MAC itself, as the NIC in front of it would.
        return Nic(self.wire.sched, name, b"\x02\x00\x00\x00\x00\x00", counters=self.wire.counters,
                   check_fcs=self.check_fcs, promiscuous=True)

    def acquire(self, owner: str, params_in: LinkParams | None = None,
                params_out: LinkParams | None = None) -> Station:
        """A free station for a peer of port ``owner``. On a link: the first free end (a,
        then b). On a hub or switch: a station this port used before, or a new one."""
        if self.kind == "link":
            if not self.free:
                raise WireFull(f"link {self.name} has two ends and both are in use")
            return self.free.pop(0)
        for i, st in enumerate(self.free):
            if st.owner == owner:
                return self.free.pop(i)
        if len(self.stations) >= MAX_STATIONS:
            raise WireFull(f"{self.kind} {self.name} has {MAX_STATIONS} stations already")
        n = sum(1 for s in self.stations if s.owner == owner)
        nic = self._nic(owner if n == 0 else f"{owner}.{n}")
        # Random streams named after the station (port name + reuse number), never after the
        # attach order, which depends on which peer happened to connect first.
        obj = self.obj
        if isinstance(obj, Hub):
            obj.attach(nic, label=nic.name)
        else:
            assert isinstance(obj, Switch), "a link's two stations exist from the start"
            inbound = params_in or self.params
            obj.attach(nic, inbound, params_out or inbound, name=f"{nic.name}<->{self.name}")
        st = Station(nic.name, self, nic, owner)
        self.stations.append(st)
        return st

    def release(self, st: Station) -> None:
        st.peer = None
        st.label = st.name
        if self.kind == "link":
            self.free.append(st)
            self.free.sort(key=lambda s: s.name)   # the next peer gets end a if it is free
        else:
            self.free.append(st)

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        self.obj.add_tap(fn)


class RealtimeWire:
    """A scheduler, a decision log and media, driven by the monotonic clock on an asyncio
    loop. Ports call :meth:`inject` for every frame that arrives from outside."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, seed: Any = 1,
                 log: DecisionLog | None = None):
        self.loop = loop or asyncio.get_event_loop()
        self.seed = seed
        self.sched = Scheduler()
        self.log = log if log is not None else DecisionLog()
        self.counters = Counters()
        self.media: dict[str, Medium] = {}
        self.epoch = time.monotonic_ns()    # wire time 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None

    def add_medium(self, name: str, kind: str, **kw) -> Medium:
        if name in self.media:
            raise ValueError(f"two media named {name!r}")
        m = Medium(self, name, kind, **kw)
        self.media[name] = m
        return m

    def now(self) -> int:
        """Wire time: monotonic ns since the wire started."""
        return time.monotonic_ns() - self.epoch

    def wall_offset(self) -> int:
        """Add to a wire time to get Unix time in ns (what a pcap wants)."""
        return time.time_ns() - time.monotonic_ns() + self.epoch

    def inject(self, st: Station, frame: bytes) -> None:
        """A frame arrived from the peer behind ``st``: put it on the medium now."""
        sched = self.sched
        t = time.monotonic_ns() - self.epoch
        sched.run_until(t)          # what was due before this frame happens first
        log = self.log
        if log.enabled:
            # Arrival order and time, under the id the medium is about to give the frame:
            # the record that lets a run be compared, frame by frame, with another.
            log.record(sched.now, log.last_id + 1, st.medium.name, "arrived", port=st.label,
                       station=st.name, size=len(frame))
        st.nic.send(frame)
        self._arm()

    def rearm(self) -> None:
        """Wake up for the next scheduled event (call after scheduling one from outside,
        e.g. a link's down/up time)."""
        self._arm()

    def _arm(self) -> None:
        t = self.sched.next_time()
        if t is None or t == self._timer_at:
            return
        if self._timer is not None:
            if self._timer_at is not None and self._timer_at < t:
                return              # the earlier timer will re-arm for this one
            self._timer.cancel()
        self._timer_at = t
        self._timer = self.loop.call_at((self.epoch + t) / 1e9, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.sched.run_until(time.monotonic_ns() - self.epoch)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def decision_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.log:
            out[e["event"]] = out.get(e["event"], 0) + 1
        return dict(sorted(out.items()))
