"""`wirestack dhcp`: get an address by DHCP (RFC 2131), or hand them out.

    wirestack dhcp                                  simulation: a server and a client on a
                                                    lossy link, the exchange as it happens
    wirestack dhcp --netns NS --tap T               client on a TAP device: print the lease
    wirestack dhcp --netns NS --tap T --ip 198.18.5.1/24 --serve 198.18.5.50-198.18.5.99 \\
                   [--router ADDR] [--dns-server ADDR] [--lease SECONDS]
                                                    server on a TAP device until Ctrl-C
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

from .common import add_tap_options, add_wire_options, ipv4, ipv4_range, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("dhcp", help="DHCP client (prints the lease) or server (--serve FIRST-LAST)")
    p.add_argument("--serve", metavar="FIRST-LAST", type=ipv4_range, help="be the server, handing out this range")
    p.add_argument("--router", metavar="ADDR", type=ipv4, help="server: the router option")
    p.add_argument("--dns-server", metavar="ADDR", action="append", default=[], type=ipv4,
                   help="server: the DNS servers option (repeatable)")
    p.add_argument("--lease", type=positive_int, default=3600, metavar="SECONDS", help="server: lease time")
    p.add_argument("--timeout", type=positive_float, default=60.0, help="client: give up after SECONDS")
    p.add_argument("--keep", action="store_true", help="client: keep (renew) the lease until Ctrl-C")
    add_wire_options(p)
    add_tap_options(p)
    p.set_defaults(run=cmd_dhcp)


def _lease_lines(lease) -> list[str]:
    return [f"bound to {lease.address} from {lease.server}, lease {lease.lease_time} s",
            f"router {lease.router or '-'}", f"dns {' '.join(lease.dns) or '-'}"]


def cmd_dhcp(args, parser) -> int:
    from . import realnet
    if args.tap:
        if args.serve:
            if not args.ip:
                parser.error("dhcp --serve needs --ip (the server's address)")
            return realnet._guard(parser, lambda: asyncio.run(_serve_tap(args, parser)))
        return realnet._guard(parser, lambda: asyncio.run(_client_tap(args, parser)))
    return _simulate(args, parser)


def _simulate(args, parser) -> int:
    from ..apps.dhcp import dhcp_client, serve_dhcp
    from ..runtime.sim import Network
    from ..wire import dhcp as d
    from ..wire import parse_frame
    net = Network(seed=args.seed)
    srv = net.host("server", "198.18.5.1/24")
    c = net.host("client")
    c.add_interface(None)
    link = net.link(srv, c, delay_ms=args.delay if args.delay is not None else 1.0,
                    jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    if args.pcap:
        net.capture(args.pcap, link)

    def show(now, frame):
        f = parse_frame(frame)
        if f.udp and f.udp.dport in (67, 68):
            m = d.parse(f.payload)
            who = "client" if f.udp.dport == 67 else "server"
            print(f"{now / 1e9:9.3f} s  {who}: {m}", flush=False)

    link.add_tap(show)
    pool = args.serve if args.serve else ("198.18.5.50", "198.18.5.99")

    async def main():
        serve_dhcp(srv, "198.18.5.1/24", pool, router=args.router or "198.18.5.1",
                   dns=args.dns_server or ["198.18.5.1"], lease_time=args.lease)
        svc = await dhcp_client(c, timeout=args.timeout)
        svc.close()
        await asyncio.sleep(0)
        return svc.lease

    try:
        lease = net.run(main())
    except TimeoutError as exc:
        print(f"wirestack dhcp: {exc}", file=sys.stderr)
        return 1
    finally:
        net.close()
    print("\n".join(_lease_lines(lease)))
    return 0


class _BareSetup:
    """A namespace and TAP device with a host whose interface has no address yet."""

    def __init__(self, args):
        from ..iface import Host, HostConfig
        from ..phy import netns
        from ..phy.tap import TapDevice, TapError
        from ..runtime.realtime import RealtimeHost
        from ..wire.addr import mac_aton
        if os.geteuid() != 0:
            raise TapError("a TAP device needs root (CAP_NET_ADMIN): run with sudo")
        self.netns, self.created_ns, self.tap, self.runtime = args.netns, False, None, None
        try:
            if args.netns and not netns.exists(args.netns):
                netns.create(args.netns)
                self.created_ns = True
            self.tap = TapDevice(args.tap, netns=args.netns)
            self.tap.configure_peer(args.peer_ip)
            rng = random.Random()
            mac = mac_aton(args.mac) if args.mac else bytes([0x02, 0x57, 0x53] + [rng.randrange(256) for _ in range(3)])
            self.host = Host("wirestack", rng=rng, config=HostConfig(log_events=False))
            self.host.add_interface(mac, None)
            self.runtime = RealtimeHost(self.host, self.tap, asyncio.get_running_loop())
            self.runtime.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from ..phy import netns
        if self.runtime is not None:
            self.runtime.stop()
        if self.tap is not None:
            self.tap.close()
            self.tap = None
        if self.created_ns:
            netns.delete(self.netns)
            self.created_ns = False


async def _client_tap(args, parser) -> int:
    from ..apps.dhcp import dhcp_client
    setup = _BareSetup(args)
    try:
        try:
            svc = await dhcp_client(setup.runtime, timeout=args.timeout)
        except TimeoutError as exc:
            print(f"wirestack dhcp: {exc}", file=sys.stderr)
            return 1
        print("\n".join(_lease_lines(svc.lease)), flush=True)
        if args.keep:
            await _until_signal()
        svc.close()
        return 0
    finally:
        setup.close()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_tap(args, parser) -> int:
    from ..apps.dhcp import serve_dhcp
    from .realnet import _Setup
    setup = _Setup(args, parser)
    try:
        try:
            svc = serve_dhcp(setup.runtime, args.ip, args.serve, router=args.router,
                             dns=args.dns_server, lease_time=args.lease)
        except ValueError as exc:
            parser.error(f"dhcp: {exc}")
        print("ready", flush=True)
        await _until_signal()
        for ip, mac, left in svc.server.leases(setup.runtime.now_ns()):
            print(f"lease {ip} {mac} {left:.0f} s")
        svc.close()
        return 0
    finally:
        setup.close()
