"""Commands that run on a real network (TAP device): serve, get, nc, ping --tap.

The TAP device is always created inside a network namespace given with --netns (created if
missing and then deleted on exit), so nothing is ever added to the root namespace.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from urllib.parse import urlsplit

from .common import add_tap_options


def register(sub) -> None:
    s = sub.add_parser("serve", help="run a wirestack host on a Linux TAP device with services")
    add_tap_options(s)
    for name, helptext in (("--echo", "TCP echo (RFC 862)"), ("--discard", "TCP discard (RFC 863)"),
                           ("--chargen", "TCP chargen (RFC 864)"), ("--iperf3", "iperf3-compatible server"),
                           ("--udp-echo", "UDP echo")):
        s.add_argument(name, type=int, metavar="PORT", help=helptext)
    s.add_argument("--http", metavar="PORT[:DIR]", help="HTTP/1.1 file server on PORT serving DIR (default .)")
    s.add_argument("--pcap", metavar="FILE")
    s.add_argument("--trace", action="store_true", help="print every frame, tcpdump style")
    s.add_argument("--offload", action="store_true",
                   help="virtio-net offloads on the TAP: take the kernel's TCP super-segments "
                        "(up to 64 KB, checksum left to do) whole, like a NIC's receive offload")
    n = sub.add_parser("nc", help="netcat: stdin to a TCP connection, what comes back to stdout")
    add_tap_options(n)
    n.add_argument("host", nargs="?", help="with --tap: the address to connect to")
    n.add_argument("port", nargs="?", type=int, help="with --tap: the port")
    n.add_argument("-l", dest="listen", type=int, metavar="PORT", help="with --tap: accept one connection on PORT")
    n.add_argument("--seed", type=int, default=1, help="simulation: random seed")
    n.add_argument("--loss", type=float, default=0.0, help="simulation: loss probability")
    n.add_argument("--delay", type=float, default=5.0, metavar="MS", help="simulation: one-way delay")
    n.add_argument("--trace", action="store_true", help="print every frame, tcpdump style (stderr)")
    g = sub.add_parser("get", help="HTTP/1.1 GET over a TAP device")
    add_tap_options(g)
    g.add_argument("url")
    g.add_argument("-o", dest="output", metavar="FILE", help="write the body to FILE (default: stdout)")
    g.add_argument("--pcap", metavar="FILE")
    g.add_argument("--trace", action="store_true")
    s.set_defaults(run=lambda args, parser: _guard(parser, lambda: asyncio.run(_serve(args, parser))))
    g.set_defaults(run=lambda args, parser: _guard(parser, lambda: asyncio.run(_get(args, parser))))
    n.set_defaults(run=run_nc)


def run_nc(args, parser) -> int:
    if args.tap:
        if args.listen is None and (not args.host or not args.port):
            parser.error("nc --tap needs HOST PORT, or -l PORT")
        return _guard(parser, lambda: asyncio.run(_nc_tap(args, parser)))
    return _nc_sim(args)


def ping_tap(args, parser) -> int:
    if not args.destination:
        parser.error("ping --tap needs a destination address")
    return _guard(parser, lambda: asyncio.run(_ping(args, parser)))


def _guard(parser, fn) -> int:
    """Environment problems (no root, no /dev/net/tun, bad namespace) -> one line, exit 1."""
    from ..phy.netns import NetnsError
    from ..phy.tap import TapError
    try:
        return fn()
    except (TapError, NetnsError, PermissionError) as exc:
        print(f"wirestack {parser.prog.split()[-1] if ' ' in parser.prog else ''}error: {exc}".replace("  ", " "),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


class _Setup:
    """Namespace + TAP + host + real-time runtime, torn down in reverse order."""

    def __init__(self, args, parser):
        from ..iface import Host, HostConfig
        from ..phy import netns
        from ..phy.tap import TapDevice, TapError
        from ..runtime.realtime import RealtimeHost
        from ..wire.addr import mac_aton
        if not args.tap or not args.ip:
            parser.error("--tap NAME and --ip ADDR/PREFIX are required on a real network")
        if os.geteuid() != 0:
            raise TapError("a TAP device needs root (CAP_NET_ADMIN): run with sudo")
        if not os.path.exists("/dev/net/tun"):
            raise TapError("/dev/net/tun is missing: load the tun module (modprobe tun)")
        self.netns = args.netns
        self.created_ns = False
        self.tap = None
        self.pcap = None
        try:
            if args.netns and not netns.exists(args.netns):
                netns.create(args.netns)
                self.created_ns = True
                netns.run_in(args.netns, ["ip", "link", "set", "lo", "up"])
            tun = bool(getattr(args, "tun", False))
            self.tap = TapDevice(args.tap, netns=args.netns, tun=tun,
                                 offload=getattr(args, "offload", False))
            if args.peer_ip:
                self.tap.configure_peer(args.peer_ip)
            else:
                self.tap.configure_peer(None)
            rng = random.Random()
            mac = mac_aton(args.mac) if args.mac else bytes([0x02, 0x57, 0x53] + [rng.randrange(256) for _ in range(3)])
            self.host = Host("wirestack", rng=rng, config=HostConfig(log_events=False))
            self.host.add_interface(mac, args.ip, layer3=tun)
            if args.gateway:
                self.host.routes.add_default(args.gateway)
            self.host.dns_servers = list(getattr(args, "dns", None) or [])
            taps = []
            if getattr(args, "pcap", None):
                from ..trace.pcap import PcapWriter
                self.pcap = PcapWriter(args.pcap, linktype=101 if tun else 1)  # 101: raw IP (LINKTYPE_RAW)
                offset = time.time_ns() - time.monotonic_ns()  # pcap wants wall-clock stamps
                taps.append(lambda now, d, frame: self.pcap.write(now + offset, frame))
            if getattr(args, "trace", False):
                from ..trace.text import TextTrace
                tracer = TextTrace()
                taps.append(lambda now, d, frame: print(tracer.format(frame, tag=d), flush=True))
            self.runtime = RealtimeHost(self.host, self.tap, asyncio.get_running_loop(), taps)
            self.runtime.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from ..phy import netns
        if getattr(self, "runtime", None) is not None:
            self.runtime.stop()
        if self.tap is not None:
            self.tap.close()
            self.tap = None
        if self.pcap is not None:
            self.pcap.close()
            self.pcap = None
        if self.created_ns:
            netns.delete(self.netns)
            self.created_ns = False


async def _serve(args, parser) -> int:
    from ..apps import services
    from ..apps.http import http_handler
    from ..apps.iperf3 import Iperf3Server
    setup = _Setup(args, parser)
    rt = setup.runtime
    servers = []
    try:
        if args.echo:
            servers.append(await rt.start_server(services.echo, args.echo))
        if args.discard:
            servers.append(await rt.start_server(services.discard, args.discard))
        if args.chargen:
            servers.append(await rt.start_server(services.make_chargen(), args.chargen))
        if args.http:
            port, _, root = args.http.partition(":")
            servers.append(await rt.start_server(http_handler(root or "."), int(port)))
        if args.iperf3:
            servers.append(await rt.start_server(Iperf3Server().handler, args.iperf3))
        udp = []
        if args.udp_echo:
            tr, _ = await rt.create_datagram_endpoint(services.UdpEcho, local_addr=("0.0.0.0", args.udp_echo))
            udp.append(tr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # SIGUSR1: report live TCP connection state (incl. TIME_WAIT) and the host's counters
        # on stdout: "conn A:p>B:q STATE" lines, then "connections N", then "counters {json}".
        loop.add_signal_handler(signal.SIGUSR1, _report, setup.host)
        print("ready", flush=True)
        await stop.wait()
        # Shut down politely: stop listening, close every connection (FIN), give the FINs
        # a moment to leave, then remove the device (and the namespace if we made it).
        for s in servers:
            s.close()
        for tr in udp:
            tr.close()
        for task in [t for s in servers for t in s.tasks]:
            task.cancel()
        setup.host.tcp.close_all()
        rt.kick()
        deadline = loop.time() + 1.0
        while setup.host.tcp.connection_count() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return 0
    finally:
        setup.close()


def _report(host) -> None:
    import json
    for conn in getattr(host.tcp, "connections", list)():   # one line per connection, if listed
        print(f"conn {getattr(conn, 'name', conn)} {getattr(conn, 'state', '?')}", flush=False)
    print(f"connections {host.tcp.connection_count()}", flush=False)
    print("counters " + json.dumps(dict(host.counters), sort_keys=True, default=str), flush=True)


async def _get(args, parser) -> int:
    from ..apps.http import http_get_to_file, http_request
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error(f"only http://HOST[:PORT]/PATH URLs are supported, not {args.url!r}")
    setup = _Setup(args, parser)
    try:
        reader, writer = await asyncio.wait_for(
            setup.runtime.open_connection(url.hostname, url.port or 80), 10)
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        host_header = url.netloc
        if args.output:
            status, headers, n = await http_get_to_file(reader, writer, host_header, path, args.output,
                                                        keep_alive=False)
        else:
            out = sys.stdout.buffer
            status, headers, _ = await http_request(reader, writer, "GET", host_header, path,
                                                    keep_alive=False, sink=out.write)
            out.flush()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)  # let the FIN leave
        if status >= 400:
            print(f"wirestack get: HTTP {status}", file=sys.stderr)
            return 1
        return 0
    finally:
        setup.close()


async def _ping(args, parser) -> int:
    setup = _Setup(args, parser)
    try:
        result = await setup.runtime.ping(args.destination, count=args.count, interval=args.interval,
                                          size=args.size, timeout=args.timeout,
                                          on_line=lambda line: print(line, flush=True))
        return 0 if result.received else 1
    finally:
        setup.close()


async def _pipe(reader, writer, stdin_data: bytes, out) -> None:
    """Send stdin, half-close, copy everything that comes back to ``out``."""
    writer.write(stdin_data)
    await writer.drain()
    writer.write_eof()
    while data := await reader.read(65536):
        out.write(data)
    out.flush()
    writer.close()
    await writer.wait_closed()


async def _nc_tap(args, parser) -> int:
    setup = _Setup(args, parser)
    rt = setup.runtime
    data = sys.stdin.buffer.read()
    try:
        if args.listen is not None:
            accepted = asyncio.get_running_loop().create_future()
            server = await rt.start_server(lambda r, w: accepted.done() or accepted.set_result((r, w)),
                                           args.listen)
            print("listening", flush=True, file=sys.stderr)
            reader, writer = await accepted
            server.close()
        else:
            reader, writer = await asyncio.wait_for(rt.open_connection(args.host, args.port), 10)
        await _pipe(reader, writer, data, sys.stdout.buffer)
        await asyncio.sleep(0.05)  # let the last ACK/FIN leave
        return 0
    finally:
        setup.close()


def _nc_sim(args) -> int:
    """Without --tap: stdin goes from host a to an echo service on host b across a simulated
    wire with the given loss and delay; what comes back is printed. Reliability made visible."""
    from ..runtime.sim import Network
    from ..apps import services
    net = Network(seed=args.seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, loss=args.loss, delay_ms=args.delay)
    if args.trace:
        from ..trace.text import TextTrace
        tracer = TextTrace()
        link.add_tap(lambda now, frame: print(tracer.format(frame, now), file=sys.stderr))
    data = sys.stdin.buffer.read()

    async def main():
        await b.start_server(services.echo, 7)
        reader, writer = await a.open_connection("198.18.0.2", 7)
        await _pipe(reader, writer, data, sys.stdout.buffer)

    net.run(main(), timeout=3600)
    st = a.counters
    print(f"wirestack nc: {len(data)} bytes echoed through b in {net.now / 1e9:.3f} s (virtual), "
          f"{st['tcp.retrans_segs']} retransmitted segments, {len(net.decisions.filter('dropped_loss'))} "
          f"frames lost on the wire", file=sys.stderr)
    net.close()
    return 0
