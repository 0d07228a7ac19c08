"""`wirestack route`: a host's routing table, printed like `ip route`; `route get ADDR`
shows the route one destination takes (longest prefix match, RFC 1812 §5.2.4.3)."""

from __future__ import annotations

import asyncio
import sys

from .common import add_tap_options, host_name, positive_int


def register(sub) -> None:
    p = sub.add_parser("route", help="print a host's routing table like `ip route`")
    p.add_argument("words", nargs="*", metavar="get ADDRESS", help="`get ADDRESS`: the route to ADDRESS")
    p.add_argument("--routers", type=positive_int, default=3, help="simulation: routers in the chain")
    p.add_argument("--host", default="a", type=host_name, help="simulation: whose table (a, r1 ... rN, b)")
    add_tap_options(p)
    p.set_defaults(run=cmd_route)


def route_get(host, ip: str) -> str:
    from ..wire.addr import ip_aton, ip_ntoa
    dst = ip_aton(ip)
    hop = host.routes.lookup(dst)
    if hop is None:
        raise OSError(101, "Network is unreachable")
    iface = host.interfaces[hop[0]]
    via = f" via {ip_ntoa(hop[1])}" if hop[1] != dst else ""
    return f"{ip}{via} dev {iface.name} src {ip_ntoa(iface.address)}"


def _show(host, args, parser) -> int:
    if args.words:
        if len(args.words) != 2 or args.words[0] != "get":
            parser.error("usage: wirestack route [get ADDRESS]")
        try:
            print(route_get(host, args.words[1]))
        except ValueError:
            parser.error(f"route: {args.words[1]}: not an IPv4 address")
        except OSError as exc:
            print(f"wirestack route: {args.words[1]}: {exc.strerror}", file=sys.stderr)
            return 1
        return 0
    for line in host.route_lines():
        print(line)
    return 0


def cmd_route(args, parser) -> int:
    if args.tap:
        from . import realnet

        async def run():
            setup = realnet._Setup(args, parser)
            try:
                return _show(setup.host, args, parser)
            finally:
                setup.close()
        return realnet._guard(parser, lambda: asyncio.run(run()))
    from ..runtime.sim import Network
    if args.routers > 200:
        parser.error("route: --routers: at most 200")
    net = Network(seed=1)
    net.chain(args.routers)
    if args.host not in net.hosts:
        parser.error(f"route: --host: no host {args.host!r} (there are {', '.join(net.hosts)})")
    status = _show(net.hosts[args.host].host, args, parser)
    net.close()
    return status
