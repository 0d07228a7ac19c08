"""The `wirestack` command.

One module per subcommand (or family of subcommands); each has `register(sub)`, which adds
its parser(s) and sets `run=function(args, parser) -> exit status`. To add a command, write
a module here and list it in COMMANDS.

Errors have one path: a run function raises (``CommandError``, or any ``ValueError`` /
``OSError`` from what the user gave), and ``main`` prints one line
``wirestack CMD: error: ...`` and returns the exit status of ``common.describe_error``.
"""

from __future__ import annotations

import os
import sys

from .. import __version__
from ..runtime.vloop import SimulationStalled
from . import arp, demo, dhcp, dns, iperf3, lab, ping, realnet, route, router, traceroute, wire
from .common import CommandError, Parser, describe_error

COMMANDS = (ping, demo, lab, realnet, iperf3, traceroute, arp, route, router, dhcp, dns, wire)


def build_parser() -> Parser:
    parser = Parser(prog="wirestack", description="A TCP/IP stack from scratch, its unreliable wire, and a lab.")
    parser.add_argument("--version", action="version", version=f"wirestack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    parser.commands = sub.choices   # name -> the subcommand's parser, for its error prefix
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        parser.print_help()
        return 2
    command_parser = parser.commands.get(args.command, parser)
    if extra:   # said by the subcommand, so the line starts "wirestack CMD: error:"
        command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args, command_parser)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`wirestack ... | head`): stop quietly, as cat does, and keep
        # Python from complaining when it flushes stdout at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (CommandError, OSError, ValueError, SimulationStalled) as exc:
        # Anything else is a bug in wirestack: that one keeps its traceback.
        message, status = describe_error(exc)
        print(f"{command_parser.prog}: error: {message}", file=sys.stderr, flush=True)
        return status
