"""A whole wire from a :class:`~wirestack.wireproc.topology.Topology`: media, ports,
capture, decision log; started in order and torn down in reverse, so whatever was
created (namespaces, TAPs, socket files) is removed even when a later port fails."""

from __future__ import annotations

import asyncio
from typing import Callable

from ..sim import DecisionLog, Link
from ..trace.pcap import PcapWriter
from .driver import RealtimeWire
from .ports import PcapPort, Port, PortError, make_port
from .topology import Topology


class WireService:
    def __init__(self, topo: Topology, loop: asyncio.AbstractEventLoop | None = None,
                 say: Callable[[str], object] = print, log_level: str = "impairments",
                 log_max: int = 100_000):
        self.topo = topo
        self.say = say
        # A long-running wire logs an "arrived" entry per frame: the log keeps the newest
        # log_max entries (about 40 MB at the default), older ones are counted as forgotten.
        self.log = DecisionLog(level=log_level, max_entries=log_max)
        self.wire = RealtimeWire(loop, seed=topo.seed, log=self.log)
        self.ports: list[Port] = []
        self.pcap: PcapWriter | None = None
        self._closed = False

    def start(self) -> None:
        """Build the media and bring every port up (raises PortError, having undone all)."""
        try:
            for m in self.topo.media:
                medium = self.wire.add_medium(m.name, m.kind, params=m.params, b_to_a=m.b_to_a,
                                              csma_cd=m.csma_cd, rate_bps=m.rate_bps,
                                              check_fcs=m.check_fcs)
                if m.faults or m.down:
                    link = medium.obj
                    # Topology.check refuses faults and down windows on a hub or switch.
                    assert isinstance(link, Link), f"medium {m.name}: faults need a link"
                    for fault, direction in m.faults:
                        link.add_fault(fault, direction)
                    for t0, t1 in m.down:
                        link.schedule_down(t0)
                        link.schedule_up(t1)
            self.wire.rearm()
            if self.topo.pcap:
                self.pcap = PcapWriter(self.topo.pcap, nanosecond=True)
                offset = self.wire.wall_offset()
                write = self.pcap.write
                for medium in self.wire.media.values():
                    medium.add_tap(lambda now, frame: write(now + offset, frame))
            for i, pc in enumerate(self.topo.ports):
                port = make_port(self.wire, pc.spec, pc.name, pc.medium, index=i,
                                 params_in=pc.params_in, params_out=pc.params_out, say=self.say,
                                 replay_delay=pc.replay_delay)
                self.ports.append(port)
                port.start()
        except BaseException:
            self.close()
            raise
        for port in self.ports:
            if isinstance(port, PcapPort):
                port.begin()

    def report(self) -> dict:
        """Counters: the wire's own, each port's, and the decisions by event."""
        return {"wire": dict(self.wire.counters),
                "ports": {p.name: dict(sorted(p.counters.items())) for p in self.ports},
                "decisions": self.wire.decision_counts(),
                "decisions_forgotten": self.log.forgotten,
                "time_ns": self.wire.now()}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for port in reversed(self.ports):
            try:
                port.close()
            except Exception as e:   # keep removing the others
                self.say(f"port {port.name}: close failed: {e}")
        self.wire.close()
        if self.pcap is not None:
            self.pcap.close()
            self.pcap = None
        if self.topo.decisions:
            self.log.to_jsonl(self.topo.decisions)


__all__ = ["WireService", "PortError"]
