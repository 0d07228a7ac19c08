"""`wirestack demo`: two hosts on a lossy wire, end to end."""

from __future__ import annotations

import json

from .common import add_wire_options, nonneg, output_file, png_path, probability, require_matplotlib
from .view import add_view_options

WIRESHARK_FILTER = "tcp.analysis.retransmission || tcp.analysis.lost_segment || arp"


def register(sub) -> None:
    d = sub.add_parser("demo", help="two hosts on a lossy wire: ARP, ping, UDP, a TCP transfer checked by sha256",
                       description="Hosts a (198.18.0.1) and b (198.18.0.2) on a simulated wire: a "
                                   "pings b, sends UDP datagrams (to an echo service, then to a closed "
                                   "port), and sends SIZE bytes over TCP; b checks them with sha256. "
                                   "The frames are written to a pcap file (demo.pcap unless --pcap or "
                                   "--no-pcap).")
    add_wire_options(d)
    d.set_defaults(loss=0.02, delay=5.0, jitter=1.0)   # the demo's wire: a little of everything
    d.add_argument("--size", type=nonneg(int), default=1_000_000, help="bytes to send over TCP")
    d.add_argument("--reorder", type=probability, default=0.02,
                   help="probability that a frame is delayed behind the next ones")
    d.add_argument("--duplicate", type=probability, default=0.01, help="probability that a frame is sent twice")
    d.add_argument("--corrupt", type=probability, default=0.0, help="probability that bits of a frame are flipped")
    d.add_argument("--no-fcs", action="store_true", help="NICs do not check the FCS: corrupted frames reach IP/UDP/TCP")
    d.add_argument("--rate", type=nonneg(float), default=100.0, metavar="MBPS", help="link rate, Mbit/s (0 = unlimited)")
    d.add_argument("--plot", metavar="FILE.png", type=png_path,
                   help="plot the TCP connection (time-sequence, cwnd, RTT); needs matplotlib")
    d.add_argument("--json", action="store_true",
                   help="print one JSON object: the inputs and the figures, units in the key names")
    d.add_argument("--decisions", metavar="FILE", type=output_file, help="write the wire's decision log (JSON lines)")
    d.add_argument("--events", metavar="FILE", type=output_file, help="write the hosts' event logs (JSON lines)")
    d.add_argument("--trace", action="store_true",
                   help="print every frame as it crosses the wire, tcpdump style, with its id and fate")
    d.add_argument("-S", dest="absolute", action="store_true",
                   help="with --trace: absolute TCP sequence numbers (tcpdump -S)")
    d.add_argument("--no-pcap", action="store_true", help="do not write a pcap file")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(run=cmd_demo)
    add_view_options(d)


def cmd_demo(args, parser) -> int:
    from ..labs.demo import DemoOptions, run_demo
    from .progress import Progress
    if args.plot:
        require_matplotlib()
    opt = DemoOptions(seed=args.seed, size=args.size, loss=args.loss, delay_ms=args.delay,
                      jitter_ms=args.jitter, reorder=args.reorder, duplicate=args.duplicate,
                      corrupt=args.corrupt, rate_mbps=args.rate or None, check_fcs=not args.no_fcs)
    opt.pcap = None if args.no_pcap else (args.pcap or "demo.pcap")
    opt.plot = args.plot
    opt.decisions_path = args.decisions
    opt.events_path = args.events
    opt.absolute_seqs = args.absolute
    if args.trace:
        opt.on_trace = lambda line: print(line, flush=True)
    bar = Progress("TCP transfer", enabled=not args.quiet and not args.trace)
    opt.on_progress = bar
    try:
        res = run_demo(opt)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(res.as_json(opt), sort_keys=True))
        return 0 if res.sha256_ok else 1
    print_report(opt, res, show_frames=not args.trace)
    return 0 if res.sha256_ok else 1


def print_report(opt, res, show_frames: bool = True, w=print) -> None:
    w(f"wirestack demo  seed={opt.seed}  wire: delay {opt.delay_ms:g} ms ± {opt.jitter_ms:g} ms, "
      f"loss {opt.loss:g} per frame per direction, reorder {opt.reorder:g}, duplicate {opt.duplicate:g}, "
      f"corrupt {opt.corrupt:g}, rate {f'{opt.rate_mbps:g}' if opt.rate_mbps else 'unlimited'} Mbit/s, "
      f"FCS check {'on' if opt.check_fcs else 'off'}")
    w("")
    w("== ping a -> b (the first request waits for ARP, it is not lost)")
    for line in res.ping_lines:
        w("  " + line)
    w("")
    w(f"== UDP echo: {res.udp_echoed}/{res.udp_sent} datagrams came back; "
      f"to a closed port: {res.udp_closed_port_error}")
    w("")
    if show_frames:
        w(f"== first frames on the wire ({res.frames} in all: " +
          ", ".join(f"{k} {v}" for k, v in res.frame_kinds.items()) + "); #N is the frame id "
          "for net.decisions.why(N)")
        for line in res.trace_head[:25]:
            w("  " + line)
        w("")
        if res.handshake:
            w("== the TCP connection opens (SYN, SYN-ACK, ACK) and closes (FIN, ACK each way)")
            for line in res.handshake:
                w("  " + line)
            w("")
    w("== what the wire did (decision log): " +
      (", ".join(f"{k} {v}" for k, v in res.decisions.items()) or "nothing unusual"))
    for note in res.notes:
        w("  " + note)
    w("")
    w(f"== TCP transfer of {opt.size} bytes a -> b")
    if res.error:
        w(f"  FAILED: {res.error}")
    w(f"  sha256 {'ok' if res.sha256_ok else 'MISMATCH'}: sent {res.sha256_sent[:16]}..., "
      f"received {res.sha256_received[:16] or '-'}...")
    w(f"  transfer time {res.transfer_seconds:.3f} s (virtual), goodput {res.goodput_mbps:.2f} Mbit/s, "
      f"retransmissions {res.retransmissions} (host a's tcp.retrans_segs)")
    if res.goodput_mbps and opt.rate_mbps:
        w(f"  {goodput_sentence(res, opt.rate_mbps)}")
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
    w("== " + (f"pcap written to {opt.pcap}" if opt.pcap else "no pcap written (--no-pcap)")
      + (f", plot to {opt.plot}" if opt.plot else ""))
    w("")
    w("next steps:")
    if opt.pcap:
        w(f"  wireshark {opt.pcap}    (display filter: {WIRESHARK_FILTER})")
    w("  wirestack demo --trace | less      every frame, with what the wire did to it")
    w("  wirestack lab                      switch one mechanism off and watch what breaks")


def goodput_sentence(res, rate: float) -> str:
    """Why goodput is below the link rate, in one sentence, from this run's own figures."""
    share = 100 * res.goodput_mbps / rate
    st = res.tcp_stats or {}
    cwnd, srtt = st.get("cwnd"), st.get("srtt")
    text = f"that is {share:.0f}% of the {rate:g} Mbit/s link: "
    if cwnd and srtt:
        bound = cwnd * 8 / (srtt / 1e9) / 1e6
        text += (f"TCP sends at most one window per round trip, and cwnd {cwnd} bytes per "
                 f"SRTT {srtt / 1e6:.1f} ms is {bound:.1f} Mbit/s; losses keep the window small "
                 f"(each one halves it)")
    else:
        text += "headers, slow start and the waits for lost segments take the rest"
    if any("SYN" in note for note in res.notes):
        text += ", and the lost SYN's timeout counts in the transfer time"
    return text


def _sender_line(st: dict) -> str:
    """The sender's figures a learner looks at, times in ms."""
    from ..labs.demo import INFINITE_SSTHRESH
    ms = lambda k: f"{st.get(k, 0) / 1e6:.1f} ms"  # noqa: E731
    ssthresh = st.get("ssthresh")
    if isinstance(ssthresh, int) and ssthresh >= INFINITE_SSTHRESH:
        ssthresh = "infinite (no loss seen yet)"
    parts = [f"segments out {st.get('segments_out')}", f"retransmits {st.get('retransmits')}",
             f"dup ACKs {st.get('dup_acks')}", f"RTT samples {st.get('rtt_samples')}",
             f"SRTT {ms('srtt')}", f"RTTVAR {ms('rttvar')}", f"RTO {ms('rto')}",
             f"cwnd {st.get('cwnd')}", f"ssthresh {ssthresh}",
             f"congestion control {st.get('congestion_control')}"]
    opts = [name for name in ("window_scaling", "timestamps", "sack") if st.get(name)]
    if opts:
        parts.append("negotiated " + "+".join(opts))
    return ", ".join(parts)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)

