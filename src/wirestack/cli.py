"""The `wirestack` command."""

from __future__ import annotations

import argparse
import json
import sys


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, not {text}")
    return p


def _nonneg(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return v
    return parse


def _positive_int(text: str) -> int:
    v = _nonneg(int)(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _add_wire_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulated wire")
    g.add_argument("--seed", type=int, default=1, help="random seed: same seed, same run (default 1)")
    g.add_argument("--loss", type=_probability, default=None, help="probability that a frame is lost")
    g.add_argument("--delay", type=_nonneg(float), default=None, metavar="MS", help="one-way delay, ms")
    g.add_argument("--jitter", type=_nonneg(float), default=None, metavar="MS", help="uniform jitter, ms")
    g.add_argument("--pcap", metavar="FILE", default=None, help="write the frames on the wire to FILE")


def _add_tap_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("real network (TAP device)")
    g.add_argument("--tap", metavar="NAME", help="use a Linux TAP device instead of the simulation")
    g.add_argument("--ip", metavar="ADDR/PREFIX", help="wirestack's address on the TAP")
    g.add_argument("--gateway", metavar="ADDR")
    g.add_argument("--mac", metavar="MAC")
    g.add_argument("--netns", metavar="NS", help="create the TAP in this network namespace")
    g.add_argument("--peer-ip", metavar="ADDR/PREFIX", help="the kernel side's address on the TAP")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wirestack", description="A TCP/IP stack from scratch, its unreliable wire, and a lab.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("ping", help="ping over the simulated wire (or a TAP device)")
    p.add_argument("destination", nargs="?", default=None)
    p.add_argument("-c", dest="count", type=_positive_int, default=4)
    p.add_argument("-s", dest="size", type=_nonneg(int), default=56)
    p.add_argument("-i", dest="interval", type=_nonneg(float), default=1.0)
    p.add_argument("-W", dest="timeout", type=_nonneg(float), default=2.0, help="seconds to wait for the last reply")
    _add_wire_options(p)
    _add_tap_options(p)

    d = sub.add_parser("demo", help="two hosts on a lossy wire: ARP, ping, UDP, a TCP transfer checked by sha256")
    _add_wire_options(d)
    d.add_argument("--size", type=_nonneg(int), default=1_000_000, help="bytes to send over TCP (default 1 MB)")
    d.add_argument("--reorder", type=_probability, default=None)
    d.add_argument("--duplicate", type=_probability, default=None)
    d.add_argument("--corrupt", type=_probability, default=None)
    d.add_argument("--no-fcs", action="store_true", help="NICs do not check the FCS: corrupted frames reach IP/UDP/TCP")
    d.add_argument("--rate", type=_nonneg(float), default=None, metavar="MBPS", help="link rate, Mbit/s (0 = unlimited)")
    d.add_argument("--plot", metavar="FILE.png", help="plot the TCP connection (time-sequence, cwnd, RTT)")
    d.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    d.add_argument("--decisions", metavar="FILE", help="write the wire's decision log (JSON lines)")
    d.add_argument("--events", metavar="FILE", help="write the hosts' event logs (JSON lines)")
    d.add_argument("--trace", action="store_true", help="print every frame, tcpdump style")

    lab = sub.add_parser("lab", help="switch one mechanism off and watch the failure it prevents")
    lab.add_argument("name", nargs="?", help="the lab to run (none: list them)")
    lab.add_argument("--seed", type=int, default=1)

    from .apps import cli_ext  # commands that need the real-time runtime (serve, get)
    cli_ext.add_commands(sub, _add_tap_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "ping":
            return cmd_ping(args, parser)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "lab":
            return cmd_lab(args, parser)
        from .apps import cli_ext
        return cli_ext.run(args, parser)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # e.g. an unwritable --pcap path: one line, not a traceback
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"wirestack {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def cmd_ping(args, parser) -> int:
    if args.tap:
        from .apps import cli_ext
        return cli_ext.ping_tap(args, parser)
    from .runtime.sim import Network
    from .wire.addr import ip_aton
    dst = args.destination or "198.18.0.2"
    try:
        ip_aton(dst)
    except ValueError:
        parser.error(f"ping: {dst}: not an IPv4 address (the simulated hosts are 198.18.0.1 and 198.18.0.2)")
    net = Network(seed=args.seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=args.delay if args.delay is not None else 0.5,
                    jitter_ms=args.jitter or 0.0, loss=args.loss or 0.0)
    if args.pcap:
        net.capture(args.pcap, link)

    def line(text: str) -> None:
        print(text, flush=False)

    result = net.run(a.ping(dst, count=args.count, interval=args.interval, size=args.size,
                            timeout=args.timeout, on_line=line))
    net.close()
    sys.stdout.flush()
    return 0 if result.received else 1


def cmd_demo(args) -> int:
    from .labs.demo import DemoOptions, run_demo
    opt = DemoOptions(seed=args.seed, size=args.size)
    if args.loss is not None:
        opt.loss = args.loss
    if args.delay is not None:
        opt.delay_ms = args.delay
    if args.jitter is not None:
        opt.jitter_ms = args.jitter
    if args.reorder is not None:
        opt.reorder = args.reorder
    if args.duplicate is not None:
        opt.duplicate = args.duplicate
    if args.corrupt is not None:
        opt.corrupt = args.corrupt
    if args.rate is not None:
        opt.rate_mbps = args.rate or None
    opt.check_fcs = not args.no_fcs
    opt.pcap = args.pcap or "demo.pcap"
    opt.plot = args.plot
    opt.decisions_path = args.decisions
    opt.events_path = args.events
    res = run_demo(opt)
    if args.json:
        print(json.dumps(res.as_json(), sort_keys=True))
        return 0 if res.sha256_ok else 1
    w = print
    w(f"wirestack demo  seed={opt.seed}  wire: delay {opt.delay_ms} ms ± {opt.jitter_ms} ms, "
      f"loss {opt.loss:g}, reorder {opt.reorder:g}, duplicate {opt.duplicate:g}, corrupt {opt.corrupt:g}, "
      f"rate {opt.rate_mbps or 'unlimited'} Mbit/s, FCS check {'on' if opt.check_fcs else 'off'}")
    w("")
    w("== ping a -> b (the first request waits for ARP, it is not lost)")
    for line in res.ping_lines:
        w("  " + line)
    w("")
    w(f"== UDP echo: {res.udp_echoed}/{res.udp_sent} datagrams came back; "
      f"to a closed port: {res.udp_closed_port_error}")
    w("")
    w(f"== first frames on the wire ({res.frames} in all: " +
      ", ".join(f"{k} {v}" for k, v in res.frame_kinds.items()) + ")")
    for line in res.trace_head[:25]:
        w("  " + line)
    w("")
    w("== what the wire did (decision log): " +
      (", ".join(f"{k} {v}" for k, v in res.decisions.items()) or "nothing unusual"))
    w("")
    w(f"== TCP transfer of {opt.size} bytes a -> b")
    if res.error:
        w(f"  FAILED: {res.error}")
    w(f"  sha256 {'ok' if res.sha256_ok else 'MISMATCH'}: sent {res.sha256_sent[:16]}..., "
      f"received {res.sha256_received[:16] or '-'}...")
    w(f"  transfer time {res.transfer_seconds:.3f} s (virtual), goodput {res.goodput_mbps:.2f} Mbit/s, "
      f"retransmissions {res.retransmissions}")
    stats = res.tcp_stats
    if stats:
        w("  sender: " + _sender_line(stats))
    w("")
    for name, counters in res.counters.items():
        w(f"== counters of host {name}")
        for k, v in counters.items():
            w(f"  {v:>8}  {k}")
    w("")
    w(f"== connection state left after TIME_WAIT: a {res.state_left.get('a')}, b {res.state_left.get('b')}"
      f"  (virtual time at the end: {res.virtual_seconds:.1f} s)")
    w(f"== pcap written to {opt.pcap}" + (f", plot to {opt.plot}" if opt.plot else ""))
    return 0 if res.sha256_ok else 1


def cmd_lab(args, parser) -> int:
    from .labs.experiments import LABS, run_lab
    if args.name is None:
        print("labs (run one with: wirestack lab NAME [--seed S]):")
        for lab in LABS.values():
            print(f"  {lab.name:<16} {lab.title}")
        return 0
    if args.name not in LABS:
        parser.error(f"lab: unknown lab {args.name!r} (choose from {', '.join(LABS)})")
    print(run_lab(args.name, seed=args.seed))
    return 0


def _sender_line(st: dict) -> str:
    """The sender's figures a learner looks at, times in ms."""
    ms = lambda k: f"{st.get(k, 0) / 1e6:.1f} ms"  # noqa: E731
    parts = [f"segments out {st.get('segments_out')}", f"retransmits {st.get('retransmits')}",
             f"dup ACKs {st.get('dup_acks')}", f"RTT samples {st.get('rtt_samples')}",
             f"SRTT {ms('srtt')}", f"RTTVAR {ms('rttvar')}", f"RTO {ms('rto')}",
             f"cwnd {st.get('cwnd')}", f"ssthresh {st.get('ssthresh')}",
             f"congestion control {st.get('congestion_control')}"]
    opts = [name for name in ("window_scaling", "timestamps", "sack") if st.get(name)]
    if opts:
        parts.append("negotiated " + "+".join(opts))
    return ", ".join(parts)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
