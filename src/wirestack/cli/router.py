"""`wirestack router`: a wirestack host forwarding between Linux network namespaces.

Each ``--tap NS:TAP:ADDR/P:PEER/P[:MTU]`` gives the router one interface: a TAP device
named TAP created inside namespace NS (made if missing, deleted on exit if made here),
wirestack's address ADDR/P on it, the kernel's address PEER/P on the other end, and
optionally wirestack's MTU on that interface (the kernel side keeps its own, so a smaller
value makes wirestack the narrow hop that sends fragmentation-needed). Each namespace gets
a default route via wirestack's address, so the Linux hosts reach each other through it:

    wirestack router --tap left:tapL:198.18.1.1/24:198.18.1.2/24 \\
                     --tap right:tapR:198.18.2.1/24:198.18.2.2/24
    ip netns exec left traceroute -n 198.18.2.2
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time

import argparse

from .common import output_file, positive_float, positive_int, route_field


def register(sub) -> None:
    p = sub.add_parser("router", help="forward between Linux namespaces, one TAP device in each")
    p.add_argument("--tap", action="append", required=True, metavar="NS:TAP:ADDR/P:PEER/P[:MTU]", type=_port,
                   help="one interface (give two or more)")
    p.add_argument("--route", action="append", nargs=2, default=None, metavar=("CIDR", "GATEWAY"),
                   type=route_field, help="a static route (CIDR 'default': the default route)")
    p.add_argument("--no-icmp", action="store_true",
                   help="send no ICMP errors (time exceeded, unreachable, frag-needed): a black hole")
    p.add_argument("--rate", type=positive_float, metavar="MBIT", help="pace each output interface at MBIT Mbit/s")
    p.add_argument("--queue", type=positive_int, default=64, help="forwarding queue per interface (datagrams)")
    p.add_argument("--no-peer-routes", action="store_true",
                   help="do not add a default route via the router in the namespaces")
    p.add_argument("--pcap", metavar="FILE", type=output_file, help="write every frame the router sends or receives")
    p.add_argument("--trace", action="store_true", help="print every frame, tcpdump style")
    p.set_defaults(run=cmd_router)


class Port:
    """One parsed --tap argument."""

    def __init__(self, text: str):
        parts = text.split(":")
        if len(parts) not in (4, 5) or not all(parts[:4]):
            raise ValueError(f"{text!r}: expected NS:TAP:ADDR/PREFIX:PEER/PREFIX[:MTU]")
        self.netns, self.tap, self.address, self.peer = parts[:4]
        from ..wire.addr import parse_cidr
        for cidr in (self.address, self.peer):
            parse_cidr(cidr)
        if len(parts) == 5 and not parts[4].isdigit():
            raise ValueError(f"{text!r}: the MTU is a number")
        self.mtu = int(parts[4]) if len(parts) == 5 else 1500
        if self.mtu < 68:
            raise ValueError(f"{text!r}: an MTU is at least 68")


def _port(text: str) -> Port:
    """--tap's argument type: a bad interface is refused while parsing (exit status 2)."""
    try:
        return Port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_router(args, parser) -> int:
    ports = list(args.tap)
    for _, gateway in args.route or []:
        if gateway == "default" or "/" in gateway:
            parser.error(f"router: --route: the gateway is an address, not {gateway!r}")
    if len(ports) < 2:
        parser.error("router: a router needs at least two --tap interfaces")
    from .realnet import _guard
    return _guard(parser, lambda: asyncio.run(_run(args, ports)))


async def _run(args, ports) -> int:
    from ..iface import Host, HostConfig
    from ..phy import netns
    from ..phy.tap import TapDevice, TapError
    from ..runtime.realtime import RealtimeHost
    if os.geteuid() != 0:
        raise TapError("TAP devices need root (CAP_NET_ADMIN): run with sudo")
    if not os.path.exists("/dev/net/tun"):
        raise TapError("/dev/net/tun is missing: load the tun module (modprobe tun)")
    created, devices, pcap, runtime = [], [], None, None
    rng = random.Random()
    host = Host("router", rng=rng, config=HostConfig(
        log_events=False, forwarding=True, icmp_errors=not args.no_icmp,
        forward_queue_limit=args.queue))
    try:
        for port in ports:
            if not netns.exists(port.netns):
                netns.create(port.netns)
                created.append(port.netns)
                netns.run_in(port.netns, ["ip", "link", "set", "lo", "up"])
            tap = TapDevice(port.tap, netns=port.netns)
            devices.append(tap)
            tap.configure_peer(port.peer)
            mac = bytes([0x02, 0x57, 0x53] + [rng.randrange(256) for _ in range(3)])
            host.add_interface(mac, port.address, mtu=port.mtu,
                               rate_bps=None if args.rate is None else int(args.rate * 1e6))
            if not args.no_peer_routes:
                proc = netns.run_in(port.netns, ["ip", "route", "replace", "default", "via",
                                                 port.address.split("/")[0]])
                if proc.returncode:
                    raise TapError(f"default route in {port.netns}: {proc.stderr.strip()}")
        for cidr, gateway in args.route or []:
            if cidr == "default":
                host.routes.add_default(gateway)
            else:
                host.add_route(cidr, gateway)
        taps = []
        if args.pcap:
            from ..trace.pcap import PcapWriter
            pcap = PcapWriter(args.pcap)
            offset = time.time_ns() - time.monotonic_ns()
            taps.append(lambda now, d, frame: pcap.write(now + offset, frame))
        if args.trace:
            from ..trace.text import TextTrace
            tracer = TextTrace()
            taps.append(lambda now, d, frame: print(tracer.format(frame, tag=d), flush=True))
        runtime = RealtimeHost(host, devices[0], asyncio.get_running_loop(), taps,
                               more_devices=devices[1:])
        runtime.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, _report, host)
        for line in host.route_lines():
            print(line)
        print("ready", flush=True)
        await stop.wait()
        return 0
    finally:
        if runtime is not None:
            runtime.stop()
        for tap in devices:
            tap.close()
        if pcap is not None:
            pcap.close()
        for name in created:
            netns.delete(name)


def _report(host) -> None:
    """SIGUSR1: the forwarding counters as one JSON line, and each queue's peak and drops."""
    import json
    print("counters " + json.dumps(dict(host.counters), sort_keys=True), flush=False)
    for i in host.interfaces:
        print(f"{i.name} queue peak {i.fwd_queue_peak} drops {i.fwd_queue_drops}", flush=False)
    sys.stdout.flush()
