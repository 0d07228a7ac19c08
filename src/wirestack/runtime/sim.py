"""Build a simulated network in a few lines and run applications on virtual time.

    net = Network(seed=1)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=5, loss=0.01)

    async def main():          # apps take the host they run on: apps.ping.ping(a, ...)
        result = await ping(a, "198.18.0.2", count=3)
        ...
    net.run(main())

Every host is a sans-I/O :class:`~wirestack.iface.Host`; this module only carries frames
between it and the simulated NICs and calls it back when its next deadline comes.
"""

from __future__ import annotations

import asyncio
import random
from functools import partial
from typing import Any

from ..iface import Host, HostConfig
from ..sim import DecisionLog, Hub, Link, LinkParams, Nic, Scheduler, Switch
from ..sim.offload import Offload
from ..trace.capture import Capture, capture_format
from ..trace.pcap import PcapWriter
from ..units import MS, SEC
from .base import RuntimeHost
from .driver import Driver
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
        sched = net.sched
        # Frames leave through the NICs; the host's deadlines are met exactly in virtual time.
        self.driver = Driver(host, sched.time, [], sched.call_soon, sched.call_at,
                             soonest=1, exact=True)

    def __repr__(self) -> str:
        return f"<SimHost {self.host.name} {self.host.addresses}>"

    @property
    def loop(self):
        return self.net.loop

    def add_interface(self, address: str, mac: bytes | str | None = None, mtu: int = 1500,
                      check_fcs: bool = True, rate_mbps: float | None = None,
                      offload: bool = False, rx_hold_us: float = 0.0) -> Nic:
        """Another interface (a NIC not yet attached to a medium). ``rate_mbps`` paces what
        a router forwards out of it through its bounded queue. ``offload=True`` gives the
        NIC TSO and GRO (:mod:`wirestack.sim.offload`) and lets TCP hand it super-segments
        of up to 64 KB; ``rx_hold_us`` is how long it gathers received frames before
        handing them up merged (interrupt moderation)."""
        if self.nics and any(nic.offload is not None for nic in self.nics) != offload:
            # TCP's super-segment size is per host (tcp.gso_max), not per route: a
            # super-segment routed to a NIC without TSO would be too big to send.
            raise ValueError(f"host {self.host.name}: offload must be the same on all its interfaces")
        mac = mac if mac is not None else self.net.next_mac()
        rate = None if rate_mbps is None else int(rate_mbps * 1_000_000)
        ifindex = self.host.add_interface(mac, address, mtu=mtu, rate_bps=rate)
        iface = self.host.interfaces[ifindex]
        nic = Nic(self.net.sched, f"{self.host.name}.{iface.name}", iface.mac,
                  on_receive=partial(self._on_frame, ifindex),
                  counters=self.host.counters, check_fcs=check_fcs,
                  offload=Offload(mtu) if offload else None, rx_hold_ns=int(rx_hold_us * 1000))
        if offload:
            self.host.enable_tso(ifindex)   # as the real-time runtime does for an offloading TAP
        self.nics.append(nic)
        self.driver.sends.append(nic.send)
        self.kick()  # the gratuitous ARP announcement goes out at once
        return nic

    def add_route(self, cidr: str, via: str) -> None:
        """A static route: ``r.add_route("198.18.3.0/24", via="198.18.1.2")``."""
        self.host.add_route(cidr, via)

    def free_nic(self) -> Nic:
        for nic in self.nics:
            if nic.medium is None:
                return nic
        raise ValueError(f"host {self.host.name} has no unattached interface: add_interface() first")

    # -- driving the sans-I/O host --------------------------------------------------------
    def _on_frame(self, ifindex: int, frame: bytes, checksum_ok: bool = False) -> None:
        self.host.receive(frame, self.net.sched.now, ifindex, checksum_ok)
        self.driver.kick()

    def kick(self) -> None:
        """Have the host transmit at the current instant (once, however many asked)."""
        self.driver.kick()

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
        self.captures: list = []     # PcapWriter / Capture: closed by close()
        self._loop: VirtualTimeLoop | None = None
        self._macs = 0
        self.recorder: Any = None     # a RunRecorder, once record() is called

    # -- building -------------------------------------------------------------------------
    def next_mac(self) -> bytes:
        """A fresh MAC address for a new interface (02:00:5e:00:xx:xx, in creation order)."""
        self._macs += 1
        # Locally administered unicast addresses (bit 1 of the first byte set).
        return bytes([0x02, 0x00, 0x5E, 0x00, self._macs >> 8, self._macs & 0xFF])

    def host(self, name: str, ip: str | None = None, *, mac=None, mtu: int = 1500,
             config: HostConfig | None = None, check_fcs: bool = True,
             gateway: str | None = None, offload: bool = False, rx_hold_us: float = 0.0) -> SimHost:
        if name in self.hosts:
            raise ValueError(f"a host named {name!r} exists already")
        config = config or HostConfig()
        if not self.log_events:
            config.log_events = False
        host = Host(name, rng=random.Random(f"{self.seed}:host:{name}"), config=config)
        sim_host = SimHost(self, host)
        self.hosts[name] = sim_host
        if ip is not None:
            sim_host.add_interface(ip, mac, mtu=mtu, check_fcs=check_fcs, offload=offload,
                                   rx_hold_us=rx_hold_us)
        if gateway is not None:
            host.routes.add_default(gateway)
        return sim_host

    def router(self, name: str, *addresses: str, mtu: int | list[int] = 1500,
               rate_mbps: float | None = None, queue_limit: int = 64, icmp_errors: bool = True,
               config: HostConfig | None = None, routes: dict[str, str] | None = None) -> SimHost:
        """A host with one interface per address that forwards between them (RFC 1812):
        ``net.router("r", "198.18.1.1/24", "198.18.2.1/24")``. ``mtu`` is one value or one
        per interface; ``rate_mbps`` paces every output interface through a drop-tail queue
        of ``queue_limit`` datagrams (the router becomes a measurable bottleneck);
        ``icmp_errors=False`` makes it drop silently (time exceeded, unreachable and
        fragmentation-needed are all lost: a PMTU black hole). ``routes`` maps a
        destination CIDR (or "default") to a gateway."""
        config = config or HostConfig()
        config.forwarding = True
        config.forward_queue_limit = queue_limit
        config.icmp_errors = icmp_errors
        r = self.host(name, config=config)
        mtus = mtu if isinstance(mtu, (list, tuple)) else [mtu] * len(addresses)
        if len(mtus) != len(addresses):
            raise ValueError("give one MTU, or one per interface")
        for address, m in zip(addresses, mtus):
            r.add_interface(address, mtu=m, rate_mbps=rate_mbps)
        for cidr, via in (routes or {}).items():
            if cidr == "default":
                r.host.routes.add_default(via)
            else:
                r.add_route(cidr, via)
        return r

    def chain(self, routers: int, *, mtu: int | list[int] = 1500, rate_mbps: float | None = None,
              queue_limit: int = 64, icmp_errors: bool | list[bool] = True, **link) -> tuple:
        """Two hosts joined by ``routers`` routers in a row, one /24 per link:

            a 198.18.0.1 -- .0.2 r1 .1.1 -- .1.2 r2 .2.1 -- ... -- .N.1 rN -- .N.2 b

        Returns (a, [r1, ..., rN], b); every host has the routes it needs. ``mtu`` may list
        one MTU per link (N + 1 of them); ``icmp_errors`` one flag per router; ``link``
        holds the link parameters (delay_ms, loss, ...) used for every link."""
        if not 1 <= routers <= 200:
            raise ValueError("between 1 and 200 routers")
        mtus = mtu if isinstance(mtu, (list, tuple)) else [mtu] * (routers + 1)
        icmp = icmp_errors if isinstance(icmp_errors, (list, tuple)) else [icmp_errors] * routers
        if len(mtus) != routers + 1 or len(icmp) != routers:
            raise ValueError("one MTU per link and one icmp_errors flag per router")
        net = "198.18.{}.{}"
        a = self.host("a", net.format(0, 1) + "/24", mtu=mtus[0], gateway=net.format(0, 2))
        rs = []
        for k in range(1, routers + 1):
            r = self.router(f"r{k}", net.format(k - 1, 2) + "/24", net.format(k, 1) + "/24",
                            mtu=[mtus[k - 1], mtus[k]], rate_mbps=rate_mbps,
                            queue_limit=queue_limit, icmp_errors=icmp[k - 1])
            if k < routers:
                r.host.routes.add_default(net.format(k, 2))
            for j in range(k - 1):
                r.add_route(net.format(j, 0) + "/24", net.format(k - 1, 1))
            rs.append(r)
        b = self.host("b", net.format(routers, 2) + "/24", mtu=mtus[routers],
                      gateway=net.format(routers, 1))
        for left, right in zip([a] + rs, rs + [b]):
            self.link(left, right, **link)
        return a, rs, b

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

    def capture(self, path, on=None):
        """Capture the frames at ``on`` (a link, hub, switch, host or NIC; default: the first
        medium) with virtual-time timestamps.

        The format follows the file name: ``*.pcapng`` (or ``"-"``, stdout) gives pcapng with
        the wire's decision as each packet's comment (see :mod:`wirestack.trace.capture`),
        anything else classic pcap. On a medium: every frame as transmitted, lost ones
        included; on a host or NIC: what that host sent and fully received."""
        target = on if on is not None else self.media[0]
        if capture_format(path) == "pcapng":
            return self._capture_pcapng(path, target)
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

    def _capture_pcapng(self, path, target) -> Capture:
        if path == "-":
            import sys
            path = sys.stdout.buffer
        if isinstance(target, (SimHost, Nic)):
            nics = target.nics if isinstance(target, SimHost) else [target]
            cap = Capture(path, self.decisions, [nic.name for nic in nics])
            for i, nic in enumerate(nics):
                cap.nic(nic, i)
        else:
            cap = Capture(path, self.decisions, [target.name])
            cap.medium(target)
        self.captures.append(cap)
        return cap

    def record(self, title: str = "run"):
        """Record the run for :meth:`report` (and ladders): call once the hosts and media
        exist, before running. Returns the :class:`~wirestack.trace.record.RunRecorder`."""
        from ..trace.record import RunRecorder
        if self.recorder is None:
            self.recorder = RunRecorder(self, title=title)
        return self.recorder

    def report(self, path: str, title: str | None = None) -> None:
        """Write the run viewer (one self-contained HTML file) for what was recorded since
        :meth:`record`."""
        if self.recorder is None:
            raise RuntimeError("nothing recorded: call net.record() after building the network, before running")
        from ..trace import viewer
        data = self.recorder.data()
        viewer.write(path, [data], title or data["title"])

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
                # Given up on; nothing to report (asyncio's own flag for "Task was destroyed").
                task._log_destroy_pending = False  # type: ignore[attr-defined]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
