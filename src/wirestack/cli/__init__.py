"""The `wirestack` command.

One module per subcommand (or family of subcommands); each has `register(sub)`, which adds
its parser(s) and sets `run=function(args, parser) -> exit status`. To add a command, write
a module here and list it in COMMANDS.
"""

from __future__ import annotations

import sys

from . import arp, demo, dhcp, dns, lab, ping, realnet, route, router, traceroute
from .common import Parser

COMMANDS = (ping, demo, lab, realnet, traceroute, arp, route, router, dhcp, dns)


def build_parser() -> Parser:
    parser = Parser(prog="wirestack", description="A TCP/IP stack from scratch, its unreliable wire, and a lab.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args, parser)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # e.g. an unwritable --pcap path: one line, not a traceback
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"wirestack {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
