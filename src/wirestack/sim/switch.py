"""A learning store-and-forward switch: one :class:`~wirestack.sim.link.Link` per port,
a MAC table with aging, flooding of unknown and broadcast destinations."""

from __future__ import annotations

import random
import zlib
from typing import Any, Callable

from wirestack.units import SEC

from .decisions import DecisionLog
from .impair import LinkParams
from .link import Link
from ..wire.checksum import FCS_RESIDUE


class _Port:
    """A switch port: the switch-side endpoint of the link to one station."""

    __slots__ = ("switch", "index", "name", "tx", "medium")

    def __init__(self, switch: "Switch", index: int):
        self.switch = switch
        self.index = index
        self.name = f"{switch.name}.p{index}"
        self.tx = None
        self.medium = None

    def attach(self, medium, tx) -> None:
        self.medium = medium
        self.tx = tx

    def deliver(self, data: bytes, fid: int, medium) -> None:
        self.switch.receive(self, data, fid)


class Switch:
    """A learning, store-and-forward Ethernet switch.

    ``attach(nic, params)`` makes a new port and a :class:`Link` (with ``params``) between
    the NIC and the port; it returns the link (for taps, faults, down/up). A frame is
    processed once it has fully arrived (store-and-forward): frames that fail the FCS check
    are dropped (``fcs_drop``, ``eth.rx_fcs_errors`` in ``switch.counters``); the source MAC
    is learned on the ingress port; the frame goes out the learned port of its destination,
    or is flooded to every other port when the destination is broadcast/multicast, unknown
    or older than ``aging`` ns. A frame whose destination is on its ingress port is filtered.
    The table holds at most ``table_limit`` addresses; when full, new ones are not learned
    (their frames are flooded, as on a real switch whose CAM table is full).
    A forwarded frame keeps its id, so ``log.why(id)`` follows it across the switch.
    """

    kind = "switch"

    def __init__(self, sched, name: str = "switch", aging: int = 300 * SEC,
                 log: DecisionLog | None = None, seed: Any = 0, rng: random.Random | None = None,
                 latency: int = 0, table_limit: int = 8192, check_fcs: bool = True):
        from wirestack.trace.counters import Counters
        self.sched = sched
        self.name = name
        self.aging = aging
        self.log = log if log is not None else DecisionLog()
        self.log.register_medium(name, self.kind)
        self.latency = latency
        self.table_limit = table_limit
        self.check_fcs = check_fcs
        self.counters = Counters()
        self._seed = seed
        self._rng = rng
        self.ports: list[_Port] = []
        self.links: list[Link] = []
        self._table: dict[bytes, tuple[int, int]] = {}   # mac -> (port index, last seen)
        self._taps: list[Callable[[int, bytes], object]] = []

    def __repr__(self) -> str:
        return f"<Switch {self.name} {len(self.ports)} ports>"

    def attach(self, nic, params: LinkParams | None = None, b_to_a: LinkParams | None = None,
               name: str | None = None) -> Link:
        """``name`` names the link (and so its random streams); by default it is the NIC's
        name and the switch port's, which depends on the attach order."""
        port = _Port(self, len(self.ports))
        self.ports.append(port)
        seed = self._seed
        if seed is None and self._rng is not None:
            seed = self._rng.getrandbits(64)
        link = Link(self.sched, nic, port, params or LinkParams(), b_to_a, seed=seed,
                    log=self.log, name=name or f"{getattr(nic, 'name', '?')}<->{port.name}")
        self.links.append(link)
        return link

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        """``fn(now, frame_without_fcs)`` for every intact frame the switch receives."""
        self._taps.append(fn)

    def mac_table(self) -> dict[str, int]:
        """Learned, unexpired addresses: {"02:00:00:00:00:01": port index}."""
        now = self.sched.now
        return {mac.hex(":"): port for mac, (port, seen) in sorted(self._table.items())
                if now - seen < self.aging}

    def receive(self, port: _Port, data: bytes, fid: int) -> None:
        now = self.sched.now
        log = self.log
        if len(data) < 18:
            self.counters.incr("eth.rx_runts")
            if log.enabled:
                log.record(now, fid, self.name, "runt", by=port.name, size=len(data))
            return
        if self.check_fcs and zlib.crc32(data) != FCS_RESIDUE:
            self.counters.incr("eth.rx_fcs_errors")
            if log.enabled:
                log.record(now, fid, self.name, "fcs_drop", by=port.name)
            return
        if self._taps:
            frame = data[:-4]
            for fn in self._taps:
                fn(now, frame)
        src = data[6:12]
        if not src[0] & 1:   # a group address is never a source; never learn it
            table = self._table
            if src in table or len(table) < self.table_limit:
                table[src] = (port.index, now)
        if self.latency:
            self.sched.call_at(now + self.latency, self._forward, port, data, fid)
        else:
            self._forward(port, data, fid)

    def _forward(self, port: _Port, data: bytes, fid: int) -> None:
        now = self.sched.now
        log = self.log
        if not data[0] & 1:
            dst = data[:6]
            entry = self._table.get(dst)
            if entry is not None:
                out, seen = entry
                if now - seen < self.aging:
                    if out == port.index:
                        if log.full:
                            log.record(now, fid, self.name, "filtered", by=port.name)
                        return
                    if log.full:
                        log.record(now, fid, self.name, "forwarded", port=out, flood=False)
                    self.ports[out].tx(data, fid)
                    return
                del self._table[dst]  # aged out: forget, and flood like an unknown address
        for p in self.ports:
            if p is not port:
                if log.full:
                    log.record(now, fid, self.name, "forwarded", port=p.index, flood=True)
                p.tx(data, fid)
