"""Build a simulated network in a few lines and run applications on virtual time.

    net = Network(seed=1)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=5, loss=0.01)

    async def main():
        result = await a.ping("198.18.0.2", count=3)
        ...
    net.run(main())

Every host is a sans-I/O :class:`~wirestack.iface.Host`; this module only carries frames
between it and the simulated NICs and calls it back when its next deadline comes.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from ..iface import Host, HostConfig
from ..sim import DecisionLog, Hub, Link, LinkParams, Nic, Scheduler, Switch
from ..trace.pcap import PcapWriter
from ..units import MS, SEC
from .base import RuntimeHost
from .vloop import VirtualTimeLoop

_PARAM_ALIASES = {"delay_ms": ("delay", MS), "jitter_ms": ("jitter", MS),
                  "reorder_delay_ms": ("reorder_delay", MS)}


def link_params(**kw) -> LinkParams:
    """LinkParams from friendly keywords: ``delay_ms``, ``jitter_ms``, ``rate_mbps`` next to
    the native ones (``delay`` in ns, ``rate_bps`` ...)."""
    out: dict[str, Any] = {}
    for key, value in kw.items():
        if key in _PARAM_ALIASES:
            name, scale = _PARAM_ALIASES[key]
            out[name] = int(round(value * scale))
        elif key == "rate_mbps":
            out["rate_bps"] = None if value is None else int(value * 1_000_000)
        else:
            out[key] = value
    return LinkParams(**out)


class SimHost(RuntimeHost):
    """A host on the simulated network: the sans-I/O Host plus its simulated NICs."""

    def __init__(self, net: "Network", host: Host):
        self.net = net
        self.host = host
        self.nics: list[Nic] = []
        self._service_pending = False
        self._timer = None
        self._timer_at: int | None = None

    def __repr__(self) -> str:
        return f"<SimHost {self.host.name} {self.host.addresses}>"

    @property
    def loop(self):
        return self.net.loop

    def add_interface(self, address: str, mac: bytes | str | None = None, mtu: int = 1500,
                      check_fcs: bool = True) -> Nic:
        mac = mac if mac is not None else self.net._next_mac()
        ifindex = self.host.add_interface(mac, address, mtu=mtu)
        iface = self.host.interfaces[ifindex]
        nic = Nic(self.net.sched, f"{self.host.name}.{iface.name}", iface.mac,
                  on_receive=lambda frame, i=ifindex: self._on_frame(i, frame),
                  counters=self.host.counters, check_fcs=check_fcs)
        self.nics.append(nic)
        self.kick()  # the gratuitous ARP announcement goes out at once
        return nic

    def free_nic(self) -> Nic:
        for nic in self.nics:
            if nic.medium is None:
                return nic
        raise ValueError(f"host {self.host.name} has no unattached interface: add_interface() first")

    # -- driving the sans-I/O host --------------------------------------------------------
    def _on_frame(self, ifindex: int, frame: bytes) -> None:
        self.host.receive(frame, self.net.sched.now, ifindex)
        self.kick()

    def kick(self) -> None:
        """Have the host transmit at the current instant (once, however many asked)."""
        if not self._service_pending:
            self._service_pending = True
            self.net.sched.call_at(self.net.sched.now, self._service)

    def _service(self) -> None:
        self._service_pending = False
        sched = self.net.sched
        now = sched.now
        nics = self.nics
        for ifindex, frame in self.host.transmit(now):
            nics[ifindex].send(frame)
        t = self.host.poll_at()
        if t is None:
            return
        if t <= now:
            t = now + 1  # due again already: come back at the next instant, never spin
        if self._timer_at != t:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = t
            self._timer = sched.call_at(t, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._service()

    def wake(self) -> None:
        self.net.loop.wake()

    def now_ns(self) -> int:
        return self.net.sched.now


class Network:
    """A simulated network: hosts, links, hubs, switches, one virtual clock, one seed."""

    def __init__(self, seed: int = 0, decisions: str = "impairments", log_events: bool = True):
        self.seed = seed
        self.sched = Scheduler()
        self.decisions = DecisionLog(level=decisions)
        self.log_events = log_events
        self.hosts: dict[str, SimHost] = {}
        self.media: list = []
        self.captures: list[PcapWriter] = []
        self._loop: VirtualTimeLoop | None = None
        self._macs = 0

    # -- building -------------------------------------------------------------------------
    def _next_mac(self) -> bytes:
        self._macs += 1
        # Locally administered unicast addresses (bit 1 of the first byte set).
        return bytes([0x02, 0x00, 0x5E, 0x00, self._macs >> 8, self._macs & 0xFF])

    def host(self, name: str, ip: str | None = None, *, mac=None, mtu: int = 1500,
             config: HostConfig | None = None, check_fcs: bool = True,
             gateway: str | None = None) -> SimHost:
        if name in self.hosts:
            raise ValueError(f"a host named {name!r} exists already")
        config = config or HostConfig()
        if not self.log_events:
            config.log_events = False
        host = Host(name, rng=random.Random(f"{self.seed}:host:{name}"), config=config)
        sim_host = SimHost(self, host)
        self.hosts[name] = sim_host
        if ip is not None:
            sim_host.add_interface(ip, mac, mtu=mtu, check_fcs=check_fcs)
        if gateway is not None:
            host.routes.add_default(gateway)
        return sim_host

    def _nic(self, end) -> Nic:
        return end.free_nic() if isinstance(end, SimHost) else end

    def link(self, a, b, *, b_to_a: dict | LinkParams | None = None, name: str | None = None,
             **params) -> Link:
        """A point-to-point link between two hosts (or NICs). Keyword parameters are those of
        :class:`~wirestack.sim.LinkParams` (plus delay_ms, jitter_ms, rate_mbps); ``b_to_a``
        gives the other direction different ones."""
        ab = link_params(**params)
        ba = link_params(**b_to_a) if isinstance(b_to_a, dict) else b_to_a
        link = Link(self.sched, self._nic(a), self._nic(b), ab, ba, log=self.decisions,
                    seed=f"{self.seed}:link:{len(self.media)}", name=name)
        self.media.append(link)
        return link

    def hub(self, *ends, csma_cd: bool = True, rate_bps: int = 10_000_000, name: str | None = None,
            distance_m: float = 10.0, **kw) -> Hub:
        hub = Hub(self.sched, csma_cd=csma_cd, rate_bps=rate_bps, log=self.decisions,
                  seed=f"{self.seed}:hub:{len(self.media)}", name=name or f"hub{len(self.media)}", **kw)
        for end in ends:
            hub.attach(self._nic(end), distance_m=distance_m)
        self.media.append(hub)
        return hub

    def switch(self, *ends, name: str | None = None, **params) -> Switch:
        sw = Switch(self.sched, name=name or f"switch{len(self.media)}", log=self.decisions,
                    seed=f"{self.seed}:switch:{len(self.media)}")
        p = link_params(**params)
        for end in ends:
            sw.attach(self._nic(end), p)
        self.media.append(sw)
        return sw

    def capture(self, path, on=None) -> PcapWriter:
        """Write a pcap of every frame on ``on`` (a link, hub, switch, host or NIC; default:
        the first medium) with virtual-time timestamps."""
        target = on if on is not None else self.media[0]
        writer = PcapWriter(path)
        if isinstance(target, SimHost):
            for nic in target.nics:
                nic.add_tap(lambda now, direction, frame: writer.write(now, frame))
        elif isinstance(target, Nic):
            target.add_tap(lambda now, direction, frame: writer.write(now, frame))
        else:
            target.add_tap(writer.write)
        self.captures.append(writer)
        return writer

    # -- running --------------------------------------------------------------------------
    @property
    def loop(self) -> VirtualTimeLoop:
        if self._loop is None:
            self._loop = VirtualTimeLoop(self.sched)
        return self._loop

    @property
    def now(self) -> int:
        return self.sched.now

    def run(self, main, timeout: float | None = None):
        """Run the coroutine ``main`` on virtual time and return its result. ``timeout`` is
        in virtual seconds."""
        if timeout is not None:
            main = asyncio.wait_for(main, timeout)
        return self.loop.run_until_complete(main)

    def run_for(self, seconds: float) -> None:
        """Let the network (timers, frames in flight) run for ``seconds`` of virtual time."""
        self.run(asyncio.sleep(seconds))

    def settle(self, limit: float = 600.0) -> None:
        """Run until nothing is scheduled any more (e.g. every TIME_WAIT has ended), or until
        ``limit`` virtual seconds have passed."""
        end = self.sched.now + int(limit * SEC)
        while True:
            t = self.sched.next_time()
            if t is None or t > end:
                break
            self.sched.step()

    def close(self) -> None:
        for w in self.captures:
            w.close()
        self.captures.clear()
        if self._loop is not None:
            self._cancel_tasks(self._loop)
            self._loop.close()
            self._loop = None

    @staticmethod
    def _cancel_tasks(loop) -> None:
        """Cancel the tasks still waiting (a server's handler, a reader) and let them unwind,
        as asyncio.run does, so closing never prints "Task was destroyed but it is pending"."""
        if loop.is_running() or loop.is_closed():
            return
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        try:   # a virtual second is plenty for finally-blocks; it costs no real time
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        except Exception:  # noqa: BLE001 - a stalled or failing unwind must not mask the result
            pass
        for task in pending:
            if task.done():
                if not task.cancelled():
                    task.exception()   # retrieved: no "exception was never retrieved"
            else:
                task._log_destroy_pending = False   # given up on; nothing to report

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
