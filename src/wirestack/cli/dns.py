"""`wirestack dns`: look a name up (RFC 1035 stub resolver), or answer for a zone.

    wirestack dns NAME                              simulation: a resolver and a server
    wirestack dns NAME --netns NS --tap T --ip A/P --dns SERVER    ask SERVER over a TAP device
    wirestack dns --serve --zone www.lab.test=198.18.6.10 --netns NS --tap T --ip A/P
                                                    answer for the zone until Ctrl-C
"""

from __future__ import annotations

import asyncio
import socket
import sys

from .common import add_tap_options, add_wire_options, positive_float, zone_entry


def register(sub) -> None:
    p = sub.add_parser("dns", help="resolve a name (A record), or serve a zone (--serve --zone NAME=ADDR)")
    p.add_argument("name", nargs="?", help="the name to resolve")
    p.add_argument("--serve", action="store_true", help="be an authoritative server for --zone")
    p.add_argument("--zone", action="append", default=[], metavar="NAME=ADDR[,ADDR...]", type=zone_entry,
                   help="a name and its addresses (repeatable)")
    p.add_argument("--timeout", type=positive_float, default=2.0, help="seconds per query attempt")
    add_wire_options(p)
    add_tap_options(p)
    p.set_defaults(run=cmd_dns)


def _zone(args, parser) -> dict[str, list[str]]:
    return dict(args.zone)      # (NAME, [ADDR, ...]) pairs, checked by zone_entry


def _print_answer(name: str, addresses: list[str]) -> None:
    for a in addresses:
        print(f"{name} has address {a}")


async def _lookup(rt, name, args) -> int:
    try:
        addresses = await rt.getaddrinfo(name)
    except socket.gaierror as exc:
        print(f"wirestack dns: {exc.strerror}", file=sys.stderr)
        return 1
    _print_answer(name, addresses)
    return 0


def cmd_dns(args, parser) -> int:
    if args.serve and not args.zone:
        parser.error("dns --serve needs at least one --zone NAME=ADDR")
    if not args.serve and not args.name:
        parser.error("dns needs a NAME to resolve (or --serve)")
    zone = _zone(args, parser)
    if args.tap:
        from . import realnet
        return realnet._guard(parser, lambda: asyncio.run(_tap(args, parser, zone)))
    from ..apps.dns import serve_dns
    from ..runtime.sim import Network
    net = Network(seed=args.seed)
    a = net.host("a", "198.18.6.1/24")
    ns = net.host("ns", "198.18.6.53/24")
    link = net.link(a, ns, delay_ms=args.delay if args.delay is not None else 1.0,
                    jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    if args.pcap:
        net.capture(args.pcap, link)
    a.host.dns_servers = ["198.18.6.53"]
    zone = zone or {"www.lab.test": ["198.18.6.10"],
                    "many.lab.test": [f"198.18.7.{i}" for i in range(1, 41)]}

    async def main():
        svc = await serve_dns(ns, zone)
        status = await _lookup(a, args.name, args)
        svc.close()
        await asyncio.sleep(0)
        return status

    status = net.run(main())
    net.close()
    return status


async def _tap(args, parser, zone) -> int:
    from ..apps.dns import serve_dns
    from .realnet import _Setup
    setup = _Setup(args, parser)
    try:
        if not args.serve:
            if not setup.host.dns_servers:
                parser.error("dns --tap needs --dns SERVER")
            return await _lookup(setup.runtime, args.name, args)
        svc = await serve_dns(setup.runtime, zone)
        print("ready", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        svc.close()
        return 0
    finally:
        setup.close()
