"""`wirestack arp`: resolve addresses with ARP (RFC 826) and print the cache like `ip neigh`."""

from __future__ import annotations

import asyncio
import sys

from .common import add_tap_options, add_wire_options, ipv4


def register(sub) -> None:
    p = sub.add_parser("arp", help="resolve addresses with ARP and print the neighbour cache")
    p.add_argument("addresses", nargs="*", metavar="ADDRESS", type=ipv4,
                   help="addresses to resolve (simulation default: the other host, 198.18.0.2)")
    add_wire_options(p)
    add_tap_options(p)
    p.set_defaults(run=cmd_arp)


async def _resolve_all(rt, addresses) -> int:
    failed = []
    for ip in addresses:
        mac = await rt.resolve(ip)
        if mac is None:
            failed.append(ip)
            print(f"arp: {ip}: no answer after {rt.host.arp.retries} requests", file=sys.stderr)
    for line in rt.host.neighbour_lines(rt.now_ns()):
        print(line)
    for ip in failed:   # `ip neigh` keeps such an entry a while as FAILED
        print(f"{ip} dev {rt.host.interfaces[0].name} FAILED")
    return 1 if failed else 0


def cmd_arp(args, parser) -> int:
    from ..wire.addr import ip_aton
    for ip in args.addresses:
        try:
            ip_aton(ip)
        except ValueError:
            parser.error(f"arp: {ip}: not an IPv4 address")
    if args.tap:
        if not args.addresses:
            parser.error("arp --tap needs an address to resolve")
        from . import realnet

        async def run():
            setup = realnet._Setup(args, parser)
            try:
                return await _resolve_all(setup.runtime, args.addresses)
            finally:
                setup.close()
        return realnet._guard(parser, lambda: asyncio.run(run()))
    from ..runtime.sim import Network
    net = Network(seed=args.seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=args.delay if args.delay is not None else 0.5,
                    jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    if args.pcap:
        net.capture(args.pcap, link)
    try:
        status = net.run(_resolve_all(a, args.addresses or [b.ip]))
    except OSError as exc:
        print(f"wirestack arp: {exc.strerror or exc}", file=sys.stderr)
        status = 1
    net.close()
    return status
