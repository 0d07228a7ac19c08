"""`wirestack wire`: the simulated wire as a real-time process other programs plug into.

    wirestack wire --medium link --loss 0.2 --port tap:ws-a:198.18.0.1/24 --port tap:ws-b:198.18.0.2/24

Prints ``ready`` once every port is up, one ``attached ...`` / ``detached ...`` line per
peer, the counters as one JSON line (``counters {...}``) on SIGUSR1; SIGINT/SIGTERM remove
everything it created and write the --pcap / --decisions files.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import argparse

from .common import input_file, nonneg, output_file, positive_int, probability, probability_pair


def register(sub) -> None:
    w = sub.add_parser("wire", help="run the simulated wire in real time; processes, Linux and VMs plug in")
    w.add_argument("--medium", choices=("link", "hub", "switch"), default="link",
                   help="point-to-point link (2 stations), shared hub, or learning switch")
    w.add_argument("--port", dest="ports", action="append", default=[], metavar="SPEC", type=_port_spec,
                   help="unix:PATH | tcp:127.0.0.1:PORT | tap:NETNS:ADDR/PREFIX | packet:IFNAME[@NETNS] | pcap:FILE")
    w.add_argument("--topology", metavar="FILE.toml", type=input_file, help="several media/ports/impairments (see README)")
    w.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    w.add_argument("--loss", type=probability, default=None, help="probability that a frame is lost")
    w.add_argument("--delay", type=nonneg(float), default=None, metavar="MS", help="one-way delay, ms")
    w.add_argument("--jitter", type=nonneg(float), default=None, metavar="MS", help="uniform jitter, ms")
    w.add_argument("--rate", type=nonneg(float), default=None, metavar="MBPS", help="rate, Mbit/s (0 = unlimited)")
    w.add_argument("--queue", type=nonneg(int), default=None, metavar="FRAMES", help="transmit queue limit")
    w.add_argument("--mtu", type=positive_int, default=None, help="largest frame payload, bytes")
    w.add_argument("--reorder", type=probability, default=None, help="probability that a frame is held back")
    w.add_argument("--reorder-delay", type=nonneg(float), default=None, metavar="MS",
                   help="how long a reordered frame is held back, ms")
    w.add_argument("--duplicate", type=probability, default=None, help="probability that a frame is sent twice")
    w.add_argument("--corrupt", type=probability, default=None, help="probability that bits of a frame are flipped")
    w.add_argument("--truncate", type=probability, default=None, help="probability that a frame is cut short")
    w.add_argument("--gilbert", metavar="P_GB,P_BG", default=None, type=probability_pair, help="Gilbert-Elliott bursty loss")
    w.add_argument("--no-fcs", action="store_true",
                   help="stations do not check the FCS: corrupted frames reach the peers")
    w.add_argument("--csma-cd", action="store_true", help="hub: carrier sense, collision detection, backoff")
    w.add_argument("--replay-delay", type=nonneg(float), default=0.0, metavar="S",
                   help="pcap: ports start replaying S seconds after ready (time for peers to attach)")
    w.add_argument("--pcap", metavar="FILE", type=output_file, help="capture the medium")
    w.add_argument("--decisions", metavar="FILE", type=output_file, help="write the decision log (JSON lines) on exit")
    w.add_argument("--log-level", choices=("full", "impairments", "off"), default="impairments",
                   help="decision log level (impairments: arrivals and what changed a frame's fate)")
    w.add_argument("--log-max", type=positive_int, default=100_000, metavar="N",
                   help="keep the newest N decisions (the count of forgotten ones is reported)")
    w.set_defaults(run=cmd_wire)


_PORT_KINDS = ("unix", "tcp", "tap", "packet", "pcap")


def _port_spec(text: str) -> str:
    """--port's type: the kind and a non-empty rest; the adapter checks the details."""
    kind, sep, rest = text.partition(":")
    if kind not in _PORT_KINDS or not sep or not rest:
        raise argparse.ArgumentTypeError(f"unknown port kind in {text!r} (use unix:, tcp:, tap:, packet: or pcap:)")
    return text


def _params_table(args) -> dict:
    t: dict = {}
    for key, name in (("loss", "loss"), ("delay", "delay_ms"), ("jitter", "jitter_ms"), ("queue", "queue_limit"),
                      ("mtu", "mtu"), ("reorder", "reorder"), ("reorder_delay", "reorder_delay_ms"),
                      ("duplicate", "duplicate"), ("corrupt", "corrupt"), ("truncate", "truncate")):
        v = getattr(args, key)
        if v is not None:
            t[name] = v
    if args.rate is not None and args.medium != "hub":
        t["rate_mbps"] = args.rate
    if args.gilbert:
        t["gilbert"] = list(args.gilbert)
    return t


def build_topology(args):
    from ..wireproc.topology import from_dict, from_toml
    if args.topology:
        topo = from_toml(args.topology)
        if args.ports:
            raise ValueError("give ports in the topology file or with --port, not both")
    else:
        medium = {"name": "wire", "kind": args.medium, "check_fcs": not args.no_fcs,
                  "port": [{"spec": s} for s in args.ports]}
        params = _params_table(args)
        if args.medium == "hub":
            medium["csma_cd"] = args.csma_cd
            if args.rate:
                medium["rate_mbps"] = args.rate
        if params:
            medium["params"] = params
        topo = from_dict({"medium": [medium]}, "command line")
    if args.replay_delay:
        for p in topo.ports:
            p.replay_delay = args.replay_delay
    if args.seed is not None:
        topo.seed = args.seed
    if args.pcap:
        topo.pcap = args.pcap
    if args.decisions:
        topo.decisions = args.decisions
    return topo


def cmd_wire(args, parser) -> int:
    from ..wireproc.topology import TopologyError
    try:
        topo = build_topology(args)
    except (TopologyError, ValueError) as e:
        parser.error(str(e))
    return asyncio.run(_run(topo, args.log_level, args.log_max))


async def _run(topo, log_level: str, log_max: int) -> int:
    from ..phy.netns import NetnsError
    from ..phy.tap import TapError
    from ..wireproc.ports import PortError
    from ..wireproc.service import WireService

    def say(line: str) -> None:
        print(line, flush=True)

    loop = asyncio.get_running_loop()
    svc = WireService(topo, loop, say=say, log_level=log_level, log_max=log_max)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def report() -> None:
        if svc.pcap is not None:
            svc.pcap.flush()
        say("counters " + json.dumps(svc.report(), sort_keys=True))

    loop.add_signal_handler(signal.SIGUSR1, report)
    try:
        try:
            svc.start()
        except (PortError, TapError, NetnsError) as e:
            print(f"wirestack wire: error: {e}", file=sys.stderr)
            return 1
        say("ready")
        await stop.wait()
        report()
        return 0
    finally:
        svc.close()
