"""`wirestack ping`: ICMP echo over the simulated wire or a TAP device."""

from __future__ import annotations

from ..apps.ping import ping
from .common import (SIM_DELAY_MS, SIM_LOSS, add_tap_options, add_wire_options, int_range, ipv4,
                     nonneg, positive_int, run_simulation)

MAX_PAYLOAD = 65507   # 65535 - 20 (IPv4 header) - 8 (ICMP header), the limit iputils enforces


def register(sub) -> None:
    p = sub.add_parser("ping", help="ping over the simulated wire (or a TAP device)",
                       description="ICMP echo, printed as iputils ping prints it. Without --tap "
                                   "the simulated hosts are 198.18.0.1 (us) and 198.18.0.2.")
    p.add_argument("destination", nargs="?", default=None, type=ipv4,
                   help="address to ping (simulation: 198.18.0.2 answers, other addresses in "
                        "198.18.0.0/24 show what a failed ARP looks like)")
    p.add_argument("-c", dest="count", type=positive_int, default=4,
                   help="stop after COUNT requests (iputils pings until Ctrl-C; Ctrl-C works here too)")
    p.add_argument("-s", dest="size", type=int_range(0, MAX_PAYLOAD, "the packet size"), default=56,
                   help="bytes of ICMP data per request")
    p.add_argument("-i", dest="interval", type=nonneg(float), default=1.0,
                   help="seconds between requests")
    p.add_argument("-W", dest="timeout", type=nonneg(float), default=2.0,
                   help="seconds to wait for replies after the last request")
    p.add_argument("-t", dest="ttl", type=int_range(1, 255, "the TTL"), default=64,
                   help="IP time to live of the requests")
    add_wire_options(p)
    p.set_defaults(delay=SIM_DELAY_MS, loss=SIM_LOSS, jitter=0.0)
    add_tap_options(p)
    p.set_defaults(run=cmd_ping)


def cmd_ping(args, parser) -> int:
    if args.tap or args.wire:
        from . import realnet
        return realnet.ping_tap(args, parser)
    from ..runtime.sim import Network
    dst = args.destination or "198.18.0.2"
    with Network(seed=args.seed) as net:
        a = net.host("a", "198.18.0.1/24")
        b = net.host("b", "198.18.0.2/24")
        link = net.link(a, b, delay_ms=args.delay, jitter_ms=args.jitter, loss=args.loss)
        if args.pcap:
            net.capture(args.pcap, link)
        result = run_simulation(net, ping(a, dst, count=args.count, interval=args.interval,
                                          size=args.size, timeout=args.timeout, ttl=args.ttl,
                                          on_line=print_line))
    return 0 if result.received else 1


def print_line(text: str) -> None:
    """One line of ping output, flushed: lines appear as they happen, also through a pipe."""
    print(text, flush=True)
