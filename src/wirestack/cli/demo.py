"""`wirestack demo`: two hosts on a lossy wire, end to end."""

from __future__ import annotations

import json

from .common import add_wire_options, nonneg, probability
from .view import add_view_options


def register(sub) -> None:
    d = sub.add_parser("demo", help="two hosts on a lossy wire: ARP, ping, UDP, a TCP transfer checked by sha256")
    add_wire_options(d)
    d.add_argument("--size", type=nonneg(int), default=1_000_000, help="bytes to send over TCP (default 1 MB)")
    d.add_argument("--reorder", type=probability, default=None)
    d.add_argument("--duplicate", type=probability, default=None)
    d.add_argument("--corrupt", type=probability, default=None)
    d.add_argument("--no-fcs", action="store_true", help="NICs do not check the FCS: corrupted frames reach IP/UDP/TCP")
    d.add_argument("--rate", type=nonneg(float), default=None, metavar="MBPS", help="link rate, Mbit/s (0 = unlimited)")
    d.add_argument("--plot", metavar="FILE.png", help="plot the TCP connection (time-sequence, cwnd, RTT)")
    d.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    d.add_argument("--decisions", metavar="FILE", help="write the wire's decision log (JSON lines)")
    d.add_argument("--events", metavar="FILE", help="write the hosts' event logs (JSON lines)")
    d.add_argument("--trace", action="store_true", help="print every frame, tcpdump style")
    d.set_defaults(run=cmd_demo)
    add_view_options(d)


def cmd_demo(args, parser) -> int:
    from ..labs.demo import DemoOptions, run_demo
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
