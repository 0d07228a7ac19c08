"""CLI commands that run on a real network (TAP device): serve, get, ping --tap."""

from __future__ import annotations


def add_commands(sub, add_tap_options) -> None:
    s = sub.add_parser("serve", help="run a wirestack host on a Linux TAP device with services")
    add_tap_options(s)
    for name, helptext in (("--echo", "TCP echo (RFC 862)"), ("--discard", "TCP discard (RFC 863)"),
                           ("--chargen", "TCP chargen (RFC 864)"), ("--iperf3", "iperf3-compatible server"),
                           ("--udp-echo", "UDP echo")):
        s.add_argument(name, type=int, metavar="PORT", help=helptext)
    s.add_argument("--http", metavar="PORT[:DIR]", help="HTTP/1.1 file server on PORT serving DIR (default .)")
    s.add_argument("--pcap", metavar="FILE")
    s.add_argument("--trace", action="store_true", help="print every frame, tcpdump style")
    g = sub.add_parser("get", help="HTTP/1.1 GET over a TAP device")
    add_tap_options(g)
    g.add_argument("url")
    g.add_argument("-o", dest="output", metavar="FILE")


def run(args, parser) -> int:
    parser.error(f"'{args.command}' needs the real-time runtime, which is not built yet")
    return 2


def ping_tap(args, parser) -> int:
    parser.error("ping --tap needs the real-time runtime, which is not built yet")
    return 2
