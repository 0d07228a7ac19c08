"""Labs on one TCP transfer whose runs differ in one switch: Karn's rule, SACK, window
scaling, the size of the bottleneck queue (bufferbloat) and slow start after idle."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .lab import Lab, conclusion, ratio
from ..units import MS, SEC
from .transfer import TransferResult, run_transfer


@dataclass
class MeasuredTransfer(TransferResult):
    rtt_ms: list = field(default_factory=list)    # the sender's RTT samples
    rto_ms: list = field(default_factory=list)    # its RTO after each sample or timeout
    queue: list = field(default_factory=list)     # frames waiting a->b when each frame was sent


def _measured(size: int, **kw) -> MeasuredTransfer:
    """run_transfer, plus the sender's RTT samples / RTO values and the bottleneck queue
    seen a->b (kept on the result as ``rtt_ms``, ``rto_ms``, ``queue``)."""
    seen: dict = {}

    def setup(net, wire):
        seen["net"] = net
        ab = wire.ab
        depths = seen["queue"] = []

        def tap(now, frame):
            depths.append(sum(1 for start in ab.waiting if start > now))
        wire.add_tap(tap)
    base = run_transfer(size, net_setup=setup, **kw)
    r = base.extended(MeasuredTransfer)
    log = seen["net"].hosts["a"].host.log.entries
    r.rtt_ms = [e["rtt_ms"] for e in log if e["kind"] == "rtt"]
    r.rto_ms = [e["rto_ms"] for e in log if e["kind"] == "rtt"] + [e["rto"] / 1e6 for e in log if e["kind"] == "rto"]
    r.queue = seen["queue"]
    return r


def _ms(values, fn=max) -> str:
    return f"{fn(values):.0f} ms" if values else "-"


# -- karn ----------------------------------------------------------------------------------

def _karn(seed):
    # Timestamps off: with them every ACK names the copy it answers and Karn's rule is moot
    # (RFC 7323 §4.1). Fast retransmit off: every loss is repaired by the timer, the case
    # where a sample from the wrong copy is a whole timeout too long.
    link = dict(delay_ms=20, rate_mbps=10, queue_limit=60, loss=0.03)
    tcp = {"timestamps": False, "fast_retransmit": False}
    return [("Karn's rule on", _measured(300_000, seed=seed, tcp=dict(tcp, karn=True), **link)),
            ("Karn's rule off", _measured(300_000, seed=seed, tcp=dict(tcp, karn=False), **link))]


def _karn_lesson(on, off):
    return (f"With Karn's rule the sender took {len(on.rtt_ms)} RTT samples, never from a retransmitted "
            f"segment: SRTT ended at {on.sender['srtt'] / 1e6:.0f} ms and the largest sample was "
            f"{_ms(on.rtt_ms)}. Without it, {len(off.rtt_ms)} samples, some timing an ACK of the second copy "
            f"from the first one's send time: largest sample {_ms(off.rtt_ms)}, SRTT ended at "
            f"{off.sender['srtt'] / 1e6:.0f} ms; "
            f"the transfer took {off.virtual_seconds:.3f} s vs {on.virtual_seconds:.3f} s.")


KARN = Lab(
    "karn", "Karn's rule: RTT samples only from segments sent once",
    "3% loss, timestamps and fast retransmit off. What does the RTO estimate learn from "
    "retransmitted segments?", _karn,
    ("result", "time", "rexmits", "RTOs", "samples", "max sample", "SRTT", "max RTO"),
    "An ACK for a retransmitted segment cannot say which copy it acknowledges (RFC 6298 §3, "
    "Karn and Partridge 1987). Timing it from the first copy inflates the estimate by the whole "
    "timeout; Karn's rule takes no sample from such segments (and keeps the backed-off RTO "
    "until a clean sample arrives).",
    conclude=lambda runs: conclusion(runs, _karn_lesson),
    # Short column names, so that eight columns fit 100 columns: RTT samples taken, the
    # largest of them, the SRTT at the end, the largest RTO.
    extra_columns={"rexmits": lambda r: str(r.sender.get("retransmits", 0)),
                   "RTOs": lambda r: str(r.counters.get("a", {}).get("tcp.rto_timeouts", 0)),
                   "samples": lambda r: str(len(r.rtt_ms)), "max sample": lambda r: _ms(r.rtt_ms),
                   "SRTT": lambda r: f"{r.sender.get('srtt', 0) / 1e6:.0f} ms",
                   "max RTO": lambda r: _ms(r.rto_ms)})


# -- sack ----------------------------------------------------------------------------------

def _sack(seed):
    link = dict(delay_ms=20, rate_mbps=10, queue_limit=60, loss=0.05)
    return [("SACK on", run_transfer(1_000_000, seed=seed, tcp={"sack": True}, **link)),
            ("SACK off (NewReno only)", run_transfer(1_000_000, seed=seed, tcp={"sack": False}, **link))]


def _sack_lesson(on, off):
    return (f"With SACK the transfer took {on.virtual_seconds:.3f} s ({on.goodput_bps / 1e6:.2f} Mbit/s), "
            f"{on.sender.get('retransmits', 0)} retransmissions, {on.counters['a'].get('tcp.rto_timeouts', 0)} "
            f"timeouts; without it {off.virtual_seconds:.3f} s ({off.goodput_bps / 1e6:.2f} Mbit/s), "
            f"{off.sender.get('retransmits', 0)} retransmissions, {off.counters['a'].get('tcp.rto_timeouts', 0)} "
            f"timeouts: {ratio(off.virtual_seconds, on.virtual_seconds)} the time.")


SACK = Lab(
    "sack", "Selective acknowledgments: several losses in one window",
    "5% loss on a 40 ms path. How much faster is recovery when the receiver says what it has?", _sack,
    ("result", "time", "goodput", "retransmits", "rto fired"),
    "A cumulative ACK only names the first hole; NewReno repairs one hole per round trip and "
    "often falls back to the timer. SACK blocks (RFC 2018) list what arrived beyond the hole, so "
    "the sender repairs every hole in one round trip (RFC 6675).",
    conclude=lambda runs: conclusion(runs, _sack_lesson))


# -- window scaling -------------------------------------------------------------------------

def _window_scaling(seed):
    link = dict(delay_ms=50, jitter_ms=1, rate_mbps=50, queue_limit=400)   # jitter: the seed matters
    tcp = {"sndbuf": 4 << 20, "rcvbuf": 4 << 20}
    return [("window scaling on", run_transfer(4_000_000, seed=seed, tcp=dict(tcp, window_scaling=True), **link)),
            ("window scaling off", run_transfer(4_000_000, seed=seed, tcp=dict(tcp, window_scaling=False), **link))]


def _ws_lesson(on, off):
    cap = 65535 * 8 / 0.1 / 1e6
    return (f"Without scaling the window field tops out at 65,535 bytes: at most {cap:.1f} Mbit/s on a "
            f"100 ms round trip, and the run got {off.goodput_bps / 1e6:.2f} Mbit/s "
            f"({off.virtual_seconds:.3f} s). With scaling (RFC 7323 §2) the 4 MB buffer is usable and "
            f"the run got {on.goodput_bps / 1e6:.2f} Mbit/s ({on.virtual_seconds:.3f} s): "
            f"{ratio(on.goodput_bps, off.goodput_bps)} the goodput.")


WINDOW_SCALING = Lab(
    "window-scaling", "Window scaling: a long fat pipe",
    "50 Mbit/s, 100 ms round trip, 4 MB buffers. How fast can a 16-bit window go?", _window_scaling,
    ("result", "time", "goodput", "peer window"),
    "Throughput is at most window / RTT. The path holds 50 Mbit/s × 100 ms = 625 kB in flight, "
    "ten times what 16 bits can advertise; the window-scale option multiplies the field.",
    conclude=lambda runs: conclusion(runs, _ws_lesson),
    extra_columns={"peer window": lambda r: f"{r.sender.get('snd_wnd', 0):,} B"})


# -- bufferbloat ----------------------------------------------------------------------------

def _bufferbloat(seed):
    tcp = {"sndbuf": 4 << 20, "rcvbuf": 4 << 20}
    out = []
    for limit in (20, 500):
        # jitter: the seed matters
        out.append((f"queue of {limit} frames", _measured(3_000_000, seed=seed, tcp=tcp, delay_ms=10,
                                                          jitter_ms=1, rate_mbps=10, queue_limit=limit)))
    return out


def _bloat_lesson(small, big):
    return (f"The path's own round trip is 20 ms plus serialization. With a 20-frame queue the median "
            f"RTT sample was {_ms(small.rtt_ms, statistics.median)} (max {_ms(small.rtt_ms)}), the queue held "
            f"at most {max(small.queue, default=0)} frames, and {small.decisions.get('queue_overflow', 0)} frames "
            f"overflowed it. With 500 frames: median RTT {_ms(big.rtt_ms, statistics.median)}, max "
            f"{_ms(big.rtt_ms)}, up to {max(big.queue, default=0)} frames waiting, goodput "
            f"{big.goodput_bps / 1e6:.2f} vs {small.goodput_bps / 1e6:.2f} Mbit/s. A bigger buffer bought "
            f"almost no throughput and multiplied the delay every packet on the link sees.")


BUFFERBLOAT = Lab(
    "bufferbloat", "Bufferbloat: the same bottleneck with a small and a huge queue",
    "10 Mbit/s, 20 ms round trip, a loss-based sender. What does a 500-frame queue do to delay?",
    _bufferbloat,
    ("result", "time", "goodput", "overflows", "max queue", "median RTT", "max RTT"),
    "A loss-based congestion control fills whatever queue it finds before it sees a loss. A "
    "queue much larger than the bandwidth-delay product adds its own drain time (500 × 1.2 ms "
    "= 0.6 s at 10 Mbit/s) to every round trip without raising throughput.",
    conclude=lambda runs: conclusion(runs, _bloat_lesson),
    extra_columns={"overflows": lambda r: str(r.decisions.get("queue_overflow", 0)),
                   "max queue": lambda r: f"{max(r.queue, default=0)} frames",
                   "median RTT": lambda r: _ms(r.rtt_ms, statistics.median), "max RTT": lambda r: _ms(r.rtt_ms)})


# -- slow start after idle ------------------------------------------------------------------

@dataclass
class IdleTransfer(TransferResult):
    resumed_s: float = 0.0      # when the sender's data left again after its pause
    burst: int = 0              # data frames it handed to the link in the first ms after that
    drops_after: int = 0        # bottleneck queue overflows from then on


PAUSE_S = 3.0


def _idle_run(seed: int, restart: bool) -> IdleTransfer:
    """1 MB, a 3 s pause (the application has nothing to say), 1 MB more."""
    seen: dict = {}

    def setup(net, wire):
        seen["net"] = net
        mac = net.hosts["a"].nics[0].mac
        sends = seen["sends"] = []

        def tap(now, frame):
            if frame[6:12] == mac and len(frame) > 100:      # a's data, not its 66-byte ACKs
                sends.append(now)
        wire.add_tap(tap)
    base = run_transfer(2_000_000, seed=seed, tcp={"slow_start_after_idle": restart}, writes=2,
                        write_interval=PAUSE_S, delay_ms=20, jitter_ms=1, rate_mbps=10,
                        queue_limit=20, net_setup=setup)
    r = base.extended(IdleTransfer)
    sends = seen["sends"]
    resumed = next((t for prev, t in zip(sends, sends[1:]) if t - prev > SEC), None)
    if resumed is not None:
        r.resumed_s = resumed / SEC
        r.burst = sum(1 for t in sends if resumed <= t < resumed + MS)
        r.drops_after = sum(1 for e in seen["net"].decisions.entries
                            if e["event"] == "queue_overflow" and e["t"] >= resumed)
    return r


def _idle(seed):
    return [("restart after idle", _idle_run(seed, True)),
            ("keep cwnd after idle", _idle_run(seed, False))]


def _idle_lesson(on, off):
    return (f"When the application wrote again at {off.resumed_s:.3f} s, the sender that kept its "
            f"window handed {off.burst} segments to the link within a millisecond; the 20-frame "
            f"queue overflowed {off.drops_after} times from then on and "
            f"{off.sender.get('retransmits', 0)} segments in all were sent twice. Restarting from "
            f"the initial window, it sent {on.burst}, slow start took it back up, and the queue "
            f"overflowed {on.drops_after} times after the pause "
            f"({on.sender.get('retransmits', 0)} retransmissions in all).")


IDLE = Lab(
    "idle", "Slow start after idle: what a sender sends when it resumes",
    "1 MB, a 3 s pause, 1 MB more through a 10 Mbit/s link with a 20-frame queue. What leaves "
    "when the application writes again?", _idle,
    ("result", "burst", "drops after pause", "retransmits"),
    "cwnd is what the sender learned from the ACKs of its last window; while it sends nothing, "
    "no ACK keeps that knowledge fresh, and the ACK clock that spaces its segments has stopped. "
    "Sent after the pause, the whole window leaves at once, faster than the bottleneck drains "
    "it. RFC 5681 §4.1: after more than an RTO without sending, start again from the initial "
    "window (TcpConfig.slow_start_after_idle; Linux's tcp_slow_start_after_idle).",
    conclude=lambda runs: conclusion(runs, _idle_lesson),
    extra_columns={"burst": lambda r: f"{r.burst} segments",
                   "drops after pause": lambda r: str(r.drops_after)})
