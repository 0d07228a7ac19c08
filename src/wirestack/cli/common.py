"""What every subcommand shares: the parser class, argument types, option groups."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
        if v < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return v
    return parse


def positive_int(text: str) -> int:
    v = nonneg(int)(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def add_wire_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulated wire")
    g.add_argument("--seed", type=int, default=1, help="random seed: same seed, same run (default 1)")
    g.add_argument("--loss", type=probability, default=None, help="probability that a frame is lost")
    g.add_argument("--delay", type=nonneg(float), default=None, metavar="MS", help="one-way delay, ms")
    g.add_argument("--jitter", type=nonneg(float), default=None, metavar="MS", help="uniform jitter, ms")
    g.add_argument("--pcap", metavar="FILE", default=None, help="write the frames on the wire to FILE")


class _Tun(argparse.Action):
    """--tun NAME: like --tap NAME, but a layer-3 TUN device (bare IP, no Ethernet, no ARP)."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.tap = value
        namespace.tun = True


def add_tap_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("real network (TAP device)")
    g.add_argument("--tap", metavar="NAME", help="use a Linux TAP device instead of the simulation")
    g.add_argument("--tun", metavar="NAME", action=_Tun, default=False,
                   help="use a Linux TUN device (IP only, no Ethernet or ARP) instead")
    g.add_argument("--ip", metavar="ADDR/PREFIX", help="wirestack's address on the TAP")
    g.add_argument("--gateway", metavar="ADDR")
    g.add_argument("--mac", metavar="MAC")
    g.add_argument("--netns", metavar="NS", help="create the TAP in this network namespace")
    g.add_argument("--peer-ip", metavar="ADDR/PREFIX", help="the kernel side's address on the TAP")
    g.add_argument("--dns", metavar="ADDR", action="append", help="DNS server for names (repeatable)")
