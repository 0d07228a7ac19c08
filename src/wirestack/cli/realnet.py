"""Commands that run on a real network (TAP device): serve, get, nc, ping --tap.

The TAP device is always created inside a network namespace given with --netns (created if
missing and then deleted on exit), so nothing is ever added to the root namespace.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
from urllib.parse import urlsplit

import argparse

from .common import (SIM_DELAY_MS, SIM_LOSS, CommandError, add_tap_options, ipv4, nonneg, output_file,
                     port, probability, tap_addresses,
                     usage_error)
from .pipes import SimulatedStdin, ThreadedStdin, copy_both_ways, settle_connection


SIM_SERVICES = {7: "echo", 9: "discard", 19: "chargen", 80: "http"}   # what host b runs for nc
CONNECT_TIMEOUT = 10.0   # seconds, like curl's default connect timeout is finite (nc -w)


def register(sub) -> None:
    s = sub.add_parser("serve", help="run a wirestack host on a Linux TAP device with services",
                       description="A wirestack host on a real network: needs root, --tap, --ip "
                                   "(and usually --netns and --peer-ip). Ctrl-C ends it; SIGUSR1 "
                                   "prints its connections and counters.")
    add_tap_options(s)
    for name, helptext in (("--echo", "TCP echo (RFC 862) on PORT"), ("--discard", "TCP discard (RFC 863) on PORT"),
                           ("--chargen", "TCP chargen (RFC 864) on PORT"),
                           ("--iperf3", "iperf3-compatible server on PORT (TCP tests only)"),
                           ("--udp-echo", "UDP echo on PORT")):
        s.add_argument(name, type=port, metavar="PORT", help=helptext)
    s.add_argument("--http", metavar="PORT[:DIR]", type=http_spec,
                   help="HTTP/1.1 file server on PORT serving DIR (default .)")
    s.add_argument("--pcap", metavar="FILE", type=output_file, help="write the frames on the TAP to FILE")
    s.add_argument("--trace", action="store_true", help="print every frame, tcpdump style, with a timestamp")
    s.add_argument("-S", dest="absolute", action="store_true",
                   help="with --trace: absolute TCP sequence numbers (tcpdump -S)")
    s.add_argument("--offload", nargs="?", const="all", choices=["all", "csum"],
                   help="virtio-net offloads on the TAP: take the kernel's TCP super-segments "
                        "(up to 64 KB, checksum left to do) whole, like a NIC's receive offload, "
                        "and hand it ours to cut; '--offload csum': only the checksums, both "
                        "ways, frames staying wire-size")
    n = sub.add_parser("nc", help="netcat: stdin to a TCP connection, what comes back to stdout",
                       description="Without --tap, a simulated wire joins host a (198.18.0.1, "
                                   "us) to host b (198.18.0.2), which runs echo on port 7 (the "
                                   "default), discard on 9, chargen on 19 and an HTTP server of "
                                   "the current directory on 80; other ports refuse. With -l, "
                                   "b connects to us and echoes what we send.")
    add_tap_options(n)
    n.add_argument("host", nargs="?", type=ipv4, help="the address to connect to (simulation: 198.18.0.2)")
    n.add_argument("port", nargs="?", type=port, help="the port (simulation: 7, 9, 19 or 80)")
    n.add_argument("-l", dest="listen", type=port, metavar="PORT", help="accept one connection on PORT")
    n.add_argument("-u", dest="udp", action="store_true",
                   help="UDP: each piece of stdin is a datagram (simulation: host b echoes on port 7); "
                        "ends 1 s after stdin once nothing more comes back")
    n.add_argument("-w", dest="wait", type=positive_float, default=CONNECT_TIMEOUT, metavar="S",
                   help="connect timeout, seconds")
    n.add_argument("--seed", type=int, default=1, help="simulation: random seed")
    n.add_argument("--loss", type=probability, default=SIM_LOSS,
                   help="simulation: probability that a frame is lost, for each frame in each direction")
    n.add_argument("--delay", type=nonneg(float), default=SIM_DELAY_MS, metavar="MS", help="simulation: one-way delay, ms")
    n.add_argument("--trace", action="store_true", help="print every frame, tcpdump style (stderr)")
    n.add_argument("-S", dest="absolute", action="store_true",
                   help="with --trace: absolute TCP sequence numbers (tcpdump -S)")
    g = sub.add_parser("get", help="HTTP/1.1 GET over a TAP device",
                       description="curl-like: needs root, --tap and --ip (no simulated mode).")
    add_tap_options(g)
    g.add_argument("url", help="http://HOST[:PORT]/PATH, HOST an IPv4 address (or a name, with --dns)")
    g.add_argument("-o", dest="output", metavar="FILE", type=output_file, help="write the body to FILE (default: stdout)")
    g.add_argument("-w", dest="wait", type=positive_float, default=CONNECT_TIMEOUT, metavar="S",
                   help="connect timeout, seconds")
    g.add_argument("--pcap", metavar="FILE", type=output_file, help="write the frames on the TAP to FILE")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar (shown with -o on a terminal)")
    g.add_argument("--trace", action="store_true", help="print every frame, tcpdump style, with a timestamp (stderr)")
    g.add_argument("-S", dest="absolute", action="store_true",
                   help="with --trace: absolute TCP sequence numbers (tcpdump -S)")
    s.set_defaults(run=lambda args, parser: _guard(parser, lambda: asyncio.run(_serve(args, parser))))
    g.set_defaults(run=lambda args, parser: _guard(parser, lambda: asyncio.run(_get(args, parser))))
    n.set_defaults(run=run_nc)


def positive_float(text: str) -> float:
    v = nonneg(float)(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return v


def http_spec(text: str) -> tuple[int, str]:
    """--http PORT[:DIR] -> (port, dir); the directory must exist."""
    p, _, root = text.partition(":")
    number = port(p)
    root = root or "."
    if not os.path.isdir(root):
        raise argparse.ArgumentTypeError(f"{root}: no such directory")
    return number, root


def run_nc(args, parser) -> int:
    if (args.host is None) != (args.port is None):
        raise usage_error("give both HOST and PORT (or neither, in the simulation)")
    if args.listen is not None and args.host is not None:
        raise usage_error("-l PORT listens: it takes no HOST PORT")
    if args.udp and args.listen is not None:
        raise usage_error("-u with -l is not supported: give HOST PORT")
    if args.udp and (args.tap or args.wire) and args.host is None:
        raise usage_error("nc -u --tap needs HOST PORT")
    if args.tap or args.wire:
        if args.listen is None and args.host is None:
            raise usage_error("nc --tap needs HOST PORT, or -l PORT")
        return _guard(parser, lambda: asyncio.run(_nc_tap(args, parser)))
    for name in ("ip", "peer_ip", "gateway", "mac", "netns"):
        if getattr(args, name):
            raise usage_error(f"--{name.replace('_', '-')} needs --tap (a real network)")
    return _nc_sim(args)


def ping_tap(args, parser) -> int:
    if not args.destination:
        raise usage_error("ping --tap needs a destination address")
    return _guard(parser, lambda: asyncio.run(_ping(args, parser)))


def _guard(parser, fn) -> int:
    """Run ``fn``; errors go to the command line's one error path (cli.main).

    Ctrl-C works as in a terminal even when we were started with SIGINT ignored (what a
    non-interactive shell does to a background job): asyncio.run takes SIGINT over only
    from Python's default handler, so a TAP ping would not stop for its statistics. The
    simulated commands take it unconditionally too (common.run_simulation), as iputils'
    ping does."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return fn()


async def connect(runtime, host: str, port_: int, timeout: float):
    """open_connection with nc's and curl's messages: "connect to H port P (tcp) timed out",
    "... failed: No route to host" (as soon as ARP gives up, as Linux reports it) or
    "... failed: Connection refused"."""
    what = f"connect to {host} port {port_} (tcp)"
    counters = runtime.counters
    arp_failed = counters["arp.resolution_failed"]
    task = asyncio.ensure_future(runtime.open_connection(host, port_))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not task.done():
            left = deadline - loop.time()
            if left <= 0:
                raise CommandError(f"{what} timed out")
            await asyncio.wait({task}, timeout=min(0.1, left))
            if not task.done() and counters["arp.resolution_failed"] > arp_failed:
                raise CommandError(f"{what} failed: No route to host")
        return task.result()
    except OSError as exc:
        raise CommandError(f"{what} failed: {exc.strerror or exc}") from None
    finally:
        if not task.done():
            task.cancel()


class _Setup:
    """Namespace + TAP + host + real-time runtime, torn down in reverse order."""

    def __init__(self, args, parser):
        from ..iface import Host, HostConfig
        from ..phy import netns
        from ..phy.tap import TapDevice, TapError
        from ..runtime.realtime import RealtimeHost
        from ..wire.addr import mac_aton
        if not (args.tap or args.wire) or not args.ip:
            raise usage_error("--tap NAME (or --wire SPEC) and --ip ADDR/PREFIX are required on a real network")
        if args.wire and args.tap:
            # One host, one interface: a wire port is Ethernet, a TUN device is bare IP.
            option = "--tun" if getattr(args, "tun", False) else "--tap"
            raise usage_error(f"--wire and {option} are two ways to attach the host: give one")
        self.ip, self.peer_ip = tap_addresses(args.ip, args.peer_ip)
        if args.wire:
            args.netns = None   # a wire port is a socket: no namespace, no root needed
        elif os.geteuid() != 0:
            raise TapError("a TAP device needs root (CAP_NET_ADMIN): run with sudo")
        if not args.wire and not os.path.exists("/dev/net/tun"):
            raise TapError("/dev/net/tun is missing: load the tun module (modprobe tun)")
        self.netns = args.netns
        self.created_ns = False
        self.tap = None
        self.device_kind = "wire" if args.wire else ("TUN" if getattr(args, "tun", False) else "TAP")
        self.pcap = None
        self.removed: list[str] = []     # what close() took away, for serve's goodbye line
        try:
            if args.netns and not netns.exists(args.netns):
                netns.create(args.netns)
                self.created_ns = True
                netns.run_in(args.netns, ["ip", "link", "set", "lo", "up"])
            tun = bool(getattr(args, "tun", False))
            if args.wire:
                from ..phy.stream import StreamDevice
                self.tap = StreamDevice(args.wire)
            else:
                offload = getattr(args, "offload", None)
                self.tap = TapDevice(args.tap, netns=args.netns, tun=tun,
                                     offload=bool(offload), tso=offload != "csum")
                self.tap.configure_peer(self.peer_ip)
            rng = random.Random()
            mac = mac_aton(args.mac) if args.mac else bytes([0x02, 0x57, 0x53] + [rng.randrange(256) for _ in range(3)])
            self.mac = mac
            self.host = Host("wirestack", rng=rng, config=HostConfig(log_events=False))
            self.host.add_interface(mac, self.ip, layer3=tun)
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
                # (With --offload the kernel's frames and our super-segments carry a TCP
                # checksum still to be done: shown as they are, not as damaged.)
                tracer = TextTrace(relative=not getattr(args, "absolute", False),
                                   verify_checksums=not getattr(args, "offload", False))
                # get and nc write data to stdout: their trace goes to stderr.
                out = sys.stdout if parser.prog.endswith("serve") else sys.stderr
                offset = time.time_ns() - time.monotonic_ns()
                taps.append(lambda now, d, frame: print(
                    tracer.format(frame, tag=f"{_wall_clock(now + offset)} {d}"), file=out, flush=True))
            # Software offloads on a plain TAP (--offload lets the kernel do more instead;
            # --offload csum only the checksums, GRO and GSO stay ours).
            soft = self.device_kind == "TAP" and getattr(args, "offload", None) in (None, "csum")
            self.runtime = RealtimeHost(self.host, self.tap, asyncio.get_running_loop(), taps,
                                        gro=soft and not getattr(args, "no_gro", False),
                                        gso=soft and not getattr(args, "no_gso", False))
            self.runtime.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from ..phy import netns
        if getattr(self, "runtime", None) is not None:
            self.runtime.stop()
            self.runtime = None
        if self.tap is not None:
            # A TAP or TUN device disappears with its file descriptor; a wire port is only
            # a socket of the wire process, which stays: nothing of ours is removed there.
            if self.device_kind != "wire":
                self.removed.append(f"{self.device_kind} device {self.tap.name}")
            self.tap.close()
            self.tap = None
        if self.pcap is not None:
            self.pcap.close()
            self.pcap = None
        if self.created_ns:
            netns.delete(self.netns)
            self.removed.append(f"network namespace {self.netns}")
            self.created_ns = False


async def wait_for_goodbyes(host, limit: float = 2.0) -> None:
    """Before the TAP device goes: let our FINs and the peer's last ACKs cross (at most
    ``limit`` seconds), so the peer sees a clean close, not a vanished host. Connections
    in TIME_WAIT are done as far as the peer is concerned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline and any(str(getattr(c, "state", "")) not in ("TIME_WAIT", "CLOSED")
                                          for c in host.tcp.connections()):
        await asyncio.sleep(0.02)


def _wall_clock(ns: int) -> str:
    """tcpdump's default timestamp: local time of day with microseconds."""
    t = time.localtime(ns // 1_000_000_000)
    return time.strftime("%H:%M:%S", t) + f".{(ns % 1_000_000_000) // 1000:06d}"


async def _serve(args, parser) -> int:
    from ..apps import services
    from ..apps.http import http_handler
    from ..apps.iperf3 import Iperf3Server
    # echo, discard and chargen run as protocols (callbacks inside the host's poll, no
    # task per connection: see runtime/protocols.py); the others as stream handlers.
    wanted = [(args.echo, "echo (TCP)", lambda: services.EchoProtocol),
              (args.discard, "discard (TCP)", lambda: services.DiscardProtocol),
              (args.chargen, "chargen (TCP)", lambda: services.ChargenProtocol),
              (args.http and args.http[0], f"HTTP serving {args.http[1] if args.http else ''}",
               lambda: http_handler(args.http[1])),
              (args.iperf3, "iperf3 (TCP tests)",
               lambda: Iperf3Server(log=lambda line: print(line, flush=True)).handler)]
    tcp_ports = [p for p, _, _ in wanted if p]
    if len(set(tcp_ports)) != len(tcp_ports):
        raise usage_error("two TCP services on the same port")
    setup = _Setup(args, parser)
    rt = setup.runtime
    servers = []
    udp = []
    try:
        lines = []
        for number, title, make in wanted:
            if not number:
                continue
            try:
                handler = make()
                if isinstance(handler, type) and issubclass(handler, asyncio.Protocol):
                    servers.append(await rt.create_server(handler, port=number))
                else:
                    servers.append(await rt.start_server(handler, number))
            except OSError as exc:
                raise CommandError(f"cannot listen on TCP port {number}: {exc.strerror or exc}",
                                   2) from None
            lines.append(f"  {number:>5}/tcp  {title}")
        if args.udp_echo:
            try:
                tr, _ = await rt.create_datagram_endpoint(services.UdpEcho,
                                                          local_addr=("0.0.0.0", args.udp_echo))
            except OSError as exc:
                raise CommandError(f"cannot bind UDP port {args.udp_echo}: {exc.strerror or exc}",
                                   2) from None
            udp.append(tr)
            lines.append(f"  {args.udp_echo:>5}/udp  echo (UDP)")
        print(_banner(setup, args))
        answers = "ping" if setup.device_kind == "TUN" else "ARP and ping"   # no ARP on layer 3
        print("services:" if lines else f"services: none (it still answers {answers})")
        for line in lines:
            print(line)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # SIGUSR1: live TCP connections (incl. TIME_WAIT) and the host's counters, in the
        # demo's columns.
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
        if setup.removed:
            print("removed: " + ", ".join(setup.removed), flush=True)


def _banner(setup: _Setup, args) -> str:
    """serve's first line: our address, then what we are plugged into. A TUN device is
    layer 3 only, so it has no MAC to show; a wire port has no namespace nor kernel side."""
    from ..wire.addr import mac_ntoa
    if setup.device_kind == "wire":
        return f"wirestack {setup.ip} ({mac_ntoa(setup.mac)}) on wire {args.wire}"
    me = f"wirestack {setup.ip}" + ("" if setup.device_kind == "TUN" else f" ({mac_ntoa(setup.mac)})")
    where = f" in namespace {args.netns}" if args.netns else ""
    return (f"{me} on {setup.device_kind} {setup.tap.name}{where}"
            + (f", kernel side {setup.peer_ip}" if setup.peer_ip else ""))


def _report(host) -> None:
    """SIGUSR1: the connections, the counters in the demo's columns, then the same counters
    as one JSON line (`counters {...}`) for scripts."""
    import json
    for conn in getattr(host.tcp, "connections", list)():   # one line per connection, if listed
        print(f"conn {getattr(conn, 'name', conn)} {getattr(conn, 'state', '?')}", flush=False)
    print(f"connections {host.tcp.connection_count()}", flush=False)
    print(f"== counters of host {host.name}")
    for k, v in host.counters.nonzero().items():
        print(f"  {v:>8}  {k}")
    print("counters " + json.dumps(dict(host.counters), sort_keys=True, default=str), flush=True)


def _parse_url(text: str, dns=None):
    url = urlsplit(text)
    if url.scheme != "http" or not url.hostname:
        raise usage_error(f"only http://HOST[:PORT]/PATH URLs are supported, not {text!r}")
    try:
        number = url.port or 80
    except ValueError:
        raise usage_error(f"{text}: the port must be a number from 1 to 65535") from None
    if number == 0:
        raise usage_error(f"{text}: the port must be a number from 1 to 65535")
    try:
        ipv4(url.hostname)
    except argparse.ArgumentTypeError:
        # A name: it needs a resolver to ask, and must be one a DNS query can carry.
        if not _HOSTNAME.match(url.hostname) or len(url.hostname) > 253:
            raise usage_error(f"{text}: HOST must be an IPv4 address or a host name "
                              "(letters, digits, '-', labels of 1-63 separated by '.')") from None
        if not dns:
            raise usage_error(f"{text}: {url.hostname} is a name: give a DNS server with --dns ADDR "
                              "(or use the IPv4 address)") from None
    return url, number


# RFC 1123 §2.1 host names: labels of letters, digits and hyphens, not starting or ending
# with a hyphen, 1-63 characters each (RFC 1035 §2.3.4).
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")


async def _lookup(runtime, name: str) -> str:
    """The first address of ``name`` from the --dns servers, with curl's message when it
    cannot be found ("Could not resolve host: NAME")."""
    import socket
    try:
        return (await runtime.getaddrinfo(name))[0]
    except socket.gaierror as exc:
        reason = str(exc.strerror or exc).removeprefix(f"{name}: ")
        raise CommandError(f"could not resolve host {name}: {reason}") from None


async def _get(args, parser) -> int:
    from ..apps.http import http_request
    url, number = _parse_url(args.url, args.dns)
    setup = _Setup(args, parser)
    try:
        address = await _lookup(setup.runtime, url.hostname)
        reader, writer = await connect(setup.runtime, address, number, args.wait)
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        host_header = url.netloc
        if args.output:
            from .progress import Progress
            bar = Progress(f"GET {args.url}", enabled=not args.quiet)
            received = 0
            with open(args.output, "wb") as f:
                def sink(data: bytes) -> None:
                    nonlocal received
                    f.write(data)
                    received += len(data)
                    bar(received)
                try:
                    status, headers, _ = await http_request(reader, writer, "GET", host_header, path,
                                                            keep_alive=False, sink=sink)
                finally:
                    bar.close()
        else:
            out = sys.stdout.buffer
            status, headers, _ = await http_request(reader, writer, "GET", host_header, path,
                                                    keep_alive=False, sink=out.write)
            out.flush()
        writer.close()
        await writer.wait_closed()
        await wait_for_goodbyes(setup.host)
        if status >= 400:
            raise CommandError(f"the server answered HTTP {status}")
        return 0
    finally:
        setup.close()


async def _ping(args, parser) -> int:
    from ..apps.ping import ping
    from .ping import print_line
    setup = _Setup(args, parser)
    try:
        result = await ping(setup.runtime, args.destination, count=args.count,
                            interval=args.interval, size=args.size, timeout=args.timeout,
                            ttl=args.ttl, on_line=print_line)
        return 0 if result.received else 1
    finally:
        setup.close()


async def _nc_tap(args, parser) -> int:
    setup = _Setup(args, parser)
    rt = setup.runtime
    try:
        if args.udp:
            from .pipes import udp_both_ways
            await udp_both_ways(rt, args.host, args.port, ThreadedStdin(asyncio.get_running_loop()),
                                sys.stdout.buffer)
            return 0
        if args.listen is not None:
            accepted = asyncio.get_running_loop().create_future()
            server = await rt.start_server(_first_connection(accepted), args.listen)
            print(f"Listening on {setup.ip.partition('/')[0]} {args.listen}", flush=True, file=sys.stderr)
            reader, writer = await accepted
            server.close()
        else:
            reader, writer = await connect(rt, args.host, args.port, args.wait)
        source = ThreadedStdin(asyncio.get_running_loop())
        await copy_both_ways(reader, writer, source, sys.stdout.buffer)
        await wait_for_goodbyes(setup.host)
        return 0
    finally:
        setup.close()


def _first_connection(accepted: asyncio.Future):
    """A server callback for nc -l: hand the first connection over, refuse the others."""
    async def on_connection(reader, writer):
        if accepted.done():
            writer.close()
        else:
            accepted.set_result((reader, writer))
    return on_connection


def _nc_sim(args) -> int:
    """Without --tap: host a (us) and host b on a simulated wire with the given loss and
    delay. b runs the service the port asks for (echo by default); with -l, b connects to
    us and echoes. Reliability made visible: what you send comes back intact."""
    from ..apps import services
    from ..apps.http import http_handler
    from ..runtime.sim import Network
    from .common import run_simulation
    host = args.host or "198.18.0.2"
    number = args.port or 7
    with Network(seed=args.seed) as net:
        a = net.host("a", "198.18.0.1/24")
        b = net.host("b", "198.18.0.2/24")
        link = net.link(a, b, loss=args.loss, delay_ms=args.delay)
        marked = None
        if args.trace:
            from ..trace.marked import MarkedTrace
            marked = MarkedTrace(net.decisions, lambda now, line, fates: print(line, file=sys.stderr),
                                 relative=not args.absolute)
            link.add_tap(marked)
        handlers = {"echo": lambda: services.echo, "discard": lambda: services.discard,
                    "chargen": services.make_chargen, "http": lambda: http_handler(".")}
        totals = {}

        async def udp():
            from .pipes import udp_both_ways
            await b.create_datagram_endpoint(services.UdpEcho, local_addr=("0.0.0.0", 7))
            source = SimulatedStdin(settle=lambda: asyncio.sleep(0.2))
            n, nbytes, m, mbytes = await udp_both_ways(a, host, number, source, sys.stdout.buffer)
            totals["udp"] = (n, nbytes, m, mbytes)

        async def main():
            if args.udp:
                return await udp()
            if args.listen is not None:
                accepted = asyncio.get_running_loop().create_future()
                await a.start_server(_first_connection(accepted), args.listen)
                print(f"Listening on 198.18.0.1 {args.listen} (host b connects and echoes)",
                      file=sys.stderr, flush=True)

                async def peer():
                    r, w = await b.open_connection("198.18.0.1", args.listen)
                    await services.echo(r, w)

                peer_task = asyncio.ensure_future(peer())
                reader, writer = await accepted
            else:
                for p, name in SIM_SERVICES.items():
                    await b.start_server(handlers[name](), p)
                reader, writer = await connect(a, host, number, args.wait)
                peer_task = None
            source = SimulatedStdin(settle=settle_connection(writer))
            totals["sent"], totals["received"] = await copy_both_ways(reader, writer, source,
                                                                      sys.stdout.buffer)
            if peer_task is not None:
                await peer_task

        try:
            run_simulation(net, main())
        finally:
            if marked is not None:
                marked.flush()
        st = a.counters
        if args.udp:
            n, nbytes, m, mbytes = totals["udp"]
            waited = st["arp.queue_overflow"]
            print(f"wirestack nc: {n} datagrams ({nbytes} bytes) sent, {m} ({mbytes} bytes) came "
                  f"back in {net.now / 1e9:.3f} s (virtual), {len(net.decisions.filter('dropped_loss'))} "
                  f"frames lost on the wire"
                  + (f", {waited} dropped while ARP was resolving (a holds {a.host.arp.queue_per_address})"
                     if waited else "") + ": UDP does not retransmit", file=sys.stderr)
            return 0
        print(f"wirestack nc: {totals['sent']} bytes sent, {totals['received']} received in "
              f"{net.now / 1e9:.3f} s (virtual), {st['tcp.retrans_segs']} retransmitted segments, "
              f"{len(net.decisions.filter('dropped_loss'))} frames lost on the wire", file=sys.stderr)
    return 0
