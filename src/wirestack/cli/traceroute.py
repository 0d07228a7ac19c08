"""`wirestack traceroute`: the hops to a destination, like traceroute(8).

On the simulated wire ``--routers N`` builds a chain of N routers between two hosts (one
/24 per link, see Network.chain) and traces from the first host to the last; with --tap it
traces from a wirestack host on a Linux TAP device.
"""

from __future__ import annotations

import asyncio
import sys

from .common import add_tap_options, add_wire_options, ipv4, nonneg, positive_int


def register(sub) -> None:
    p = sub.add_parser("traceroute", help="print the routers on the way to a host (UDP or ICMP probes)")
    p.add_argument("destination", nargs="?", default=None, type=ipv4,
                   help="address to trace (simulation default: the host behind the last router)")
    p.add_argument("-I", dest="icmp", action="store_true", help="ICMP echo probes instead of UDP")
    p.add_argument("-n", dest="numeric", action="store_true", help="print addresses only")
    p.add_argument("-m", dest="max_hops", type=positive_int, default=30, help="max TTL")
    p.add_argument("-q", dest="queries", type=positive_int, default=3, help="probes per hop")
    p.add_argument("-w", dest="wait", type=nonneg(float), default=5.0, help="seconds to wait for an answer")
    p.add_argument("--routers", type=positive_int, default=3, help="simulation: routers in the chain")
    p.add_argument("--mtu", type=positive_int, default=1500, help="simulation: MTU of every link")
    p.add_argument("--silent", type=positive_int, action="append", default=[], metavar="K",
                   help="simulation: router K sends no ICMP (repeatable)")
    add_wire_options(p)
    add_tap_options(p)
    p.set_defaults(run=cmd_traceroute)


def _print(line: str) -> None:
    print(line, flush=True)


def cmd_traceroute(args, parser) -> int:
    if args.tap:
        if not args.destination:
            parser.error("traceroute --tap needs a destination address")
        from . import realnet
        return realnet._guard(parser, lambda: asyncio.run(_trace_tap(args, parser)))
    from ..runtime.sim import Network
    if args.routers > 200:
        parser.error("traceroute: --routers: at most 200")
    if any(k > args.routers for k in args.silent):
        parser.error(f"traceroute: --silent: there are only {args.routers} routers")
    net = Network(seed=args.seed)
    link = dict(delay_ms=args.delay if args.delay is not None else 1.0,
                jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    a, routers, b = net.chain(args.routers, mtu=args.mtu,
                              icmp_errors=[k + 1 not in args.silent for k in range(args.routers)],
                              **link)
    if args.pcap:
        net.capture(args.pcap, a)
    dst = args.destination or b.ip
    result = net.run(_trace(a, dst, args))
    net.close()
    sys.stdout.flush()
    return 0 if result.reached else 1


async def _trace(rt, dst, args):
    from ..apps.traceroute import traceroute
    return await traceroute(rt, dst, max_hops=args.max_hops, queries=args.queries, wait=args.wait,
                            icmp=args.icmp, numeric=args.numeric, on_line=_print)


async def _trace_tap(args, parser) -> int:
    from .realnet import _Setup
    setup = _Setup(args, parser)
    try:
        result = await _trace(setup.runtime, args.destination, args)
        return 0 if result.reached else 1
    finally:
        setup.close()
