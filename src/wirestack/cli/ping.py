"""`wirestack ping`: ICMP echo over the simulated wire or a TAP device."""

from __future__ import annotations

import sys

from .common import add_tap_options, add_wire_options, nonneg, positive_int


def register(sub) -> None:
    p = sub.add_parser("ping", help="ping over the simulated wire (or a TAP device)")
    p.add_argument("destination", nargs="?", default=None)
    p.add_argument("-c", dest="count", type=positive_int, default=4)
    p.add_argument("-s", dest="size", type=nonneg(int), default=56)
    p.add_argument("-i", dest="interval", type=nonneg(float), default=1.0)
    p.add_argument("-W", dest="timeout", type=nonneg(float), default=2.0, help="seconds to wait for the last reply")
    add_wire_options(p)
    add_tap_options(p)
    p.set_defaults(run=cmd_ping)


def cmd_ping(args, parser) -> int:
    if args.tap or args.wire:
        from . import realnet
        return realnet.ping_tap(args, parser)
    from ..runtime.sim import Network
    from ..wire.addr import ip_aton
    dst = args.destination or "198.18.0.2"
    try:
        ip_aton(dst)
    except ValueError:
        parser.error(f"ping: {dst}: not an IPv4 address (the simulated hosts are 198.18.0.1 and 198.18.0.2)")
    net = Network(seed=args.seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=args.delay if args.delay is not None else 0.5,
                    jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    if args.pcap:
        net.capture(args.pcap, link)

    def line(text: str) -> None:
        print(text, flush=False)

    result = net.run(a.ping(dst, count=args.count, interval=args.interval, size=args.size,
                            timeout=args.timeout, on_line=line))
    net.close()
    sys.stdout.flush()
    return 0 if result.received else 1
