"""What every subcommand shares: the parser class, argument types, option groups, and the
one place that turns an error into the line a user reads and the exit status a script sees.

Exit status, as ping, nc and curl use it: 0 the run worked; 1 the run failed (100% ping
loss, a refused connection, a transfer that did not complete); 2 the command could not start
(a bad argument, a missing file, no permission, no TAP support).
"""

from __future__ import annotations

import argparse
import errno
import re

EXIT_FAILED = 1
EXIT_USAGE = 2

# The simulated wire of ping, nc and iperf3 when no option says otherwise: a clean LAN
# (0.5 ms each way, nothing lost). The demo's wire is lossy on purpose and says so.
SIM_DELAY_MS = 0.5
SIM_LOSS = 0.0


class CommandError(Exception):
    """A failure with a message meant for the user; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED):
        super().__init__(message)
        self.status = status


def usage_error(message: str) -> CommandError:
    """A bad input found after parsing (exit status 2)."""
    return CommandError(message, EXIT_USAGE)


# OSErrors that mean "the command could not start": the user's file or permission.
_SETUP_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
                 errno.EROFS, errno.EEXIST, errno.ENAMETOOLONG, errno.EADDRINUSE,
                 errno.EADDRNOTAVAIL}


def describe_error(exc: BaseException) -> tuple[str, int]:
    """(one-line message, exit status) for an exception that reached the command line."""
    from ..phy.netns import NetnsError
    from ..phy.tap import TapError
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, (TapError, NetnsError)):
        return str(exc), EXIT_USAGE          # no root, no /dev/net/tun, bad namespace
    if isinstance(exc, ValueError):
        return str(exc) or type(exc).__name__, EXIT_USAGE
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            text = f"{exc.filename}: {text}"
        if isinstance(exc, TimeoutError) and not (exc.strerror or str(exc)):
            text = "timed out"
        return text, (EXIT_USAGE if exc.errno in _SETUP_ERRNOS else EXIT_FAILED)
    return f"{type(exc).__name__}: {exc}", EXIT_FAILED


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after every option that has a default worth showing."""

    def _get_help_string(self, action):
        # `is`, not `in`: 0 and 0.0 compare equal to False, and a 0 default is worth showing.
        if (action.default is None or action.default is False or action.default is argparse.SUPPRESS
                or "default" in (action.help or "")):
            return action.help
        return super()._get_help_string(action)


class RawEpilogFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """Keeps the line breaks of the description and epilog (a list of labs, examples)."""


class Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (no usage dump)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, not {text}")
    return p


def nonneg(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if v != v or v in (float("inf"),):
            raise argparse.ArgumentTypeError(f"must be a finite number: {text}")
        if v < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return v
    parse.__name__ = f"non-negative {kind.__name__}"
    return parse


def positive_int(text: str) -> int:
    v = nonneg(int)(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def int_range(lo: int, hi: int, what: str = "a number"):
    """An integer in [lo, hi], e.g. ping's -s (0..65507) or -t (1..255)."""
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi}, not {v}")
        return v
    parse.__name__ = what
    return parse


port = int_range(1, 65535, "a port")


def positive_float(text: str) -> float:
    """A number of seconds (or Mbit/s) that must be more than 0, e.g. a timeout."""
    v = nonneg(float)(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return v


def ipv4(text: str) -> str:
    """A dotted-quad IPv4 address."""
    from ..wire.addr import ip_aton
    try:
        ip_aton(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None
    return text


def ipv4_cidr(text: str) -> str:
    """ADDR or ADDR/PREFIX; a missing prefix is settled later (see ``tap_addresses``)."""
    addr, sep, plen = text.partition("/")
    ipv4(addr)
    if sep and not (plen.isdigit() and 0 < int(plen) <= 32):
        raise argparse.ArgumentTypeError(f"bad prefix length in {text!r} (1 to 32)")
    return text


def ipv4_range(text: str) -> tuple[str, str]:
    """FIRST-LAST, two IPv4 addresses, FIRST not above LAST (a DHCP pool)."""
    from ..wire.addr import ip_aton
    first, sep, last = text.partition("-")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST, e.g. 198.18.5.50-198.18.5.99, not {text!r}")
    ipv4(first)
    ipv4(last)
    if ip_aton(first) > ip_aton(last):
        raise argparse.ArgumentTypeError(f"{text}: the first address is above the last")
    return first, last


def route_field(text: str) -> str:
    """Either word of ``--route CIDR GATEWAY``: ADDR[/PREFIX], or ``default`` (0.0.0.0/0).
    argparse gives both words the same type; the command checks that GATEWAY is an address."""
    if text == "default":
        return text
    try:
        return ipv4_cidr(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"not ADDR/PREFIX, ADDR or 'default': {text!r}") from None


def zone_entry(text: str) -> tuple[str, list[str]]:
    """NAME=ADDR[,ADDR...]: a DNS name and its A records."""
    name, sep, addresses = text.partition("=")
    if not sep or not name or not addresses:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDR[,ADDR...], not {text!r}")
    return name, [ipv4(a) for a in addresses.split(",")]


_HOST_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def host_name(text: str) -> str:
    """The name of a simulated host (a, b, r1, client, ...); which ones exist is the run's."""
    if not _HOST_NAME.match(text):
        raise argparse.ArgumentTypeError(f"invalid host name {text!r} (letters, digits, '_', '-')")
    return text


def probability_pair(text: str) -> tuple[float, float]:
    """P1,P2: two probabilities (Gilbert-Elliott: good-to-bad, bad-to-good)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two probabilities P1,P2, not {text!r}")
    return probability(parts[0]), probability(parts[1])


def mac_address(text: str) -> str:
    """xx:xx:xx:xx:xx:xx, unicast (a multicast source MAC is invalid, IEEE 802.3 §3.2.3)."""
    from ..wire.addr import mac_aton
    try:
        mac = mac_aton(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a MAC address: {text!r} (like 02:57:53:00:00:01)") from None
    if mac[0] & 1:
        raise argparse.ArgumentTypeError(f"{text} is a multicast address; a host needs a unicast MAC")
    if mac == bytes(6):
        raise argparse.ArgumentTypeError("00:00:00:00:00:00 is not a usable MAC address")
    return text


_NS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_IF_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def netns_name(text: str) -> str:
    if not _NS_NAME.match(text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"invalid namespace name {text!r} (1-64 letters, digits, '_', '.', '-')")
    return text


def interface_name(text: str) -> str:
    if not _IF_NAME.match(text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"invalid interface name {text!r} (1-15 letters, digits, '_', '.', '-')")
    return text


def output_file(text: str) -> str:
    """A file the command will write: refuse at once a directory that does not exist (or is
    not writable), instead of failing after the whole run."""
    import os
    if not text or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a file name")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text}: no such directory {parent}")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot write in {parent} (permission denied)")
    return text


def input_file(text: str) -> str:
    """A file the command reads: it must exist now."""
    import os
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def png_path(text: str) -> str:
    """A plot file: matplotlib picks the format from the suffix, and we write PNGs."""
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"{text!r}: the plot is a PNG file, its name must end in .png")
    return output_file(text)


def require_matplotlib() -> None:
    """--plot needs the optional extra; say how to get it instead of an ImportError."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise usage_error("--plot needs matplotlib: pip install 'wirestack[plot]'") from None


def run_simulation(net, coro, timeout: float | None = None):
    """Run ``coro`` on the simulated network; the first Ctrl-C cancels it (so it can print
    what it has, as ping prints its statistics) instead of killing the process. The second
    Ctrl-C interrupts for good."""
    import asyncio
    import signal
    loop = net.loop
    task = loop.create_task(asyncio.wait_for(coro, timeout) if timeout is not None else coro)

    def on_sigint(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        loop.call_soon_threadsafe(task.cancel)
        loop.wake()   # leave the virtual-time selector at once

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:        # not the main thread (e.g. called from a test's thread)
        previous = None
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        # Interrupted, and the coroutine had nothing to print: exit as Ctrl-C does (130).
        raise KeyboardInterrupt from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def tap_addresses(ip: str, peer_ip: str | None) -> tuple[str, str | None]:
    """Complete --ip and --peer-ip: each takes the other's prefix when it has none; refuse an
    address without any prefix (it would be a /32 that can reach nobody) and equal addresses."""
    from ipaddress import IPv4Interface
    addr, _, plen = ip.partition("/")
    paddr, _, pplen = (peer_ip or "").partition("/")
    plen = plen or pplen
    if not plen:
        raise usage_error(f"--ip {ip}: give a prefix length, e.g. --ip {ip}/24 (or one in --peer-ip)")
    if peer_ip:
        pplen = pplen or plen
        if paddr == addr:
            raise usage_error(f"--peer-ip {peer_ip} is wirestack's own address (--ip); "
                              "the kernel side needs another one")
        if IPv4Interface(f"{addr}/{plen}").network != IPv4Interface(f"{paddr}/{plen}").network:
            raise usage_error(f"--peer-ip {paddr} is not in {IPv4Interface(f'{addr}/{plen}').network} "
                              "(--ip): the two ends of the TAP must share a subnet")
        peer_ip = f"{paddr}/{pplen}"
    return f"{addr}/{plen}", peer_ip


def add_wire_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulated wire")
    g.add_argument("--seed", type=int, default=1, help="random seed: same seed, same run")
    g.add_argument("--loss", type=probability, default=None,
                   help="probability that a frame is lost, for each frame in each direction")
    g.add_argument("--delay", type=nonneg(float), default=None, metavar="MS", help="one-way delay, ms")
    g.add_argument("--jitter", type=nonneg(float), default=None, metavar="MS", help="uniform jitter, ms")
    g.add_argument("--pcap", metavar="FILE", default=None, type=output_file,
                   help="write the frames on the wire to FILE")


class _Tun(argparse.Action):
    """--tun NAME: like --tap NAME, but a layer-3 TUN device (bare IP, no Ethernet, no ARP)."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.tap = value
        namespace.tun = True


def add_tap_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("real network (TAP device)")
    g.add_argument("--tap", metavar="NAME", type=interface_name,
                   help="use a Linux TAP device instead of the simulation")
    g.add_argument("--tun", metavar="NAME", action=_Tun, default=False, type=interface_name,
                   help="use a Linux TUN device (IP only, no Ethernet or ARP) instead")
    g.add_argument("--ip", metavar="ADDR/PREFIX", type=ipv4_cidr,
                   help="wirestack's address on the TAP (the prefix may come from --peer-ip)")
    g.add_argument("--gateway", metavar="ADDR", type=ipv4, help="default route via this router")
    g.add_argument("--mac", metavar="MAC", type=mac_address,
                   help="wirestack's MAC address (default: random, locally administered)")
    g.add_argument("--netns", metavar="NS", type=netns_name,
                   help="create the TAP in this network namespace (created if missing, then deleted)")
    g.add_argument("--peer-ip", metavar="ADDR/PREFIX", type=ipv4_cidr,
                   help="the kernel side's address on the TAP")
    g.add_argument("--dns", metavar="ADDR", action="append", type=ipv4,
                   help="DNS server for names (repeatable)")
    g.add_argument("--no-gro", action="store_true",
                   help="TAP: hand every frame read to IP on its own (default: merge a wake-up's "
                        "in-order TCP data first, Linux's generic receive offload)")
    g.add_argument("--no-gso", action="store_true",
                   help="TAP: TCP builds every MTU-sized segment itself (default: it hands over "
                        "up to 64 KB, cut into frames just before the write, Linux's GSO)")
    add_wire_port_option(p)


def wire_spec(text: str) -> str:
    from ..phy.stream import parse_spec
    try:
        parse_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_wire_port_option(p: argparse.ArgumentParser) -> None:
    """--wire: attach to a running `wirestack wire` through one of its stream ports, instead
    of a TAP device (QEMU stream framing; no root needed)."""
    g = p.add_argument_group("shared wire (a running `wirestack wire`)")
    g.add_argument("--wire", metavar="SPEC", default=None, type=wire_spec,
                   help="unix:PATH or tcp:127.0.0.1:PORT of a `wirestack wire` stream port (instead of --tap)")
