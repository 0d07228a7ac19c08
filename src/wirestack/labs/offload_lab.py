"""The ``offload`` lab: why NICs cut and merge TCP segments for the stack (TSO and GRO).

The same bulk transfer on a 10 Gbit/s link twice: with plain NICs, then with NICs that do
segmentation offload on transmit and receive offload on receive (:mod:`wirestack.sim.offload`).
The wire carries the same MTU-sized frames both times; what changes is how many segments
the two TCP/IP stacks build and parse, and so the CPU they spend per megabyte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .lab import Lab, conclusion, ratio
from .transfer import TransferResult, run_transfer

SIZE = 4_000_000
# 10 Gbit/s, 100 µs round trip; jitter (order kept) so that the seed matters.
LINK = dict(rate_mbps=10_000, delay_ms=0.05, jitter_ms=0.01)
RX_HOLD_US = 50                                     # interrupt moderation of the offloading NICs
# 1 MB buffers: a window well above the path's 125 kB bandwidth-delay product that still
# fits the link's 1000-frame queue, so neither run loses a frame.
TCP = {"sndbuf": 1 << 20, "rcvbuf": 1 << 20}


@dataclass
class OffloadRun(TransferResult):
    offload: bool = False
    cpu_s: float = 0.0          # this machine's CPU for the whole run: varies run to run
    tso_super: int = 0          # super-segments a's NIC cut...
    tso_frames: int = 0         # ...into this many wire frames
    gro_merged: int = 0         # frames b's NIC merged into larger segments

    def tcp(self, host: str, name: str) -> int:
        return self.counters.get(host, {}).get(name, 0)

    @property
    def stack_segments(self) -> int:
        """Segments the two TCP layers handled: built by a and b, parsed by a and b."""
        return sum(self.tcp(h, n) for h in "ab" for n in ("tcp.out_segs", "tcp.in_segs"))

    @property
    def segments_per_second(self) -> float:
        return self.stack_segments / self.virtual_seconds if self.virtual_seconds else 0.0

    @property
    def cpu_ms_per_mb(self) -> float:
        return self.cpu_s * 1e3 / (self.size / 1e6)


def _run(seed: int, offload: bool) -> OffloadRun:
    seen: dict = {}

    def setup(net, wire):
        seen["a"], seen["b"] = net.hosts["a"].nics[0], net.hosts["b"].nics[0]

    # Both runs keep delayed ACKs: a merged segment holds several full-sized ones, so the
    # receiver answers it at once (RFC 5681 §4.2, see SegmentArrives._rcv_in_order).
    start = time.process_time()
    base = run_transfer(SIZE, seed=seed, offload=offload, rx_hold_us=RX_HOLD_US if offload else 0,
                        tcp=TCP, net_setup=setup, **LINK)
    cpu = time.process_time() - start
    r = base.extended(OffloadRun)
    r.offload, r.cpu_s = offload, cpu
    a, b = seen["a"].offload, seen["b"].offload
    if a is not None:
        r.tso_super, r.tso_frames, r.gro_merged = a.tso_super, a.tso_frames, b.gro_merged
    return r


def _runs(seed):
    return [("offload off", _run(seed, False)), ("TSO + GRO on", _run(seed, True))]


def _per_second(n: float) -> str:
    """Segments a second, in thousands: "2,066 k/s"."""
    return f"{n / 1000:,.0f} k/s"


def _lesson(off: OffloadRun, on: OffloadRun) -> str:
    per_seg_on = on.size / max(on.tcp("b", "tcp.in_segs"), 1) / 1000
    return (f"the {off.size:,} bytes left a as {off.segments_a_to_b:,} frames on the wire with offload off "
            f"and {on.segments_a_to_b:,} with it on. Without offload a's TCP built "
            f"{off.tcp('a', 'tcp.out_segs'):,} segments and b's parsed {off.tcp('b', 'tcp.in_segs'):,}: "
            f"{_per_second(off.segments_per_second)} of stack work at 10 Gbit/s. With offload a's TCP "
            f"built {on.tcp('a', 'tcp.out_segs'):,} (its NIC cut {on.tso_super:,} super-segments into "
            f"{on.tso_frames:,} frames) and b's parsed {on.tcp('b', 'tcp.in_segs'):,} (its NIC merged "
            f"{on.gro_merged:,} frames): {ratio(off.stack_segments, on.stack_segments)} fewer segments for the "
            f"stacks, {_per_second(on.segments_per_second)}. The per-packet cost was paid about once per "
            f"{per_seg_on:.0f} kB received instead of once per 1448 bytes.")


def _cpu_notes(runs) -> list[str]:
    return [f"{label}: {r.cpu_ms_per_mb:.1f} ms per MB ({r.cpu_s:.2f} s, simulated NICs and wire "
            f"included)" for label, r in runs]


OFFLOAD = Lab(
    "offload", "Why NICs offload segmentation (TSO) and receive (GRO)",
    "4 MB over 10 Gbit/s with plain NICs, then with NICs that cut 64 KB TCP segments into "
    "frames and merge arriving frames. How many segments must the stacks handle?", _runs,
    ("result", "time", "frames a->b", "a TCP out", "b TCP in", "ACKs", "stack segs/s"),
    "A stack pays a fixed cost per packet (build or parse headers, look up the connection, "
    "update its state, decide on an ACK) besides the cost per byte. At 10 Gbit/s full-size "
    "frames arrive 800,000 times a second. TSO lets the sender hand its NIC one segment of up "
    "to 64 KB, which the NIC cuts into MTU-sized frames with their own sequence numbers and "
    "checksums; GRO merges in-order frames of one flow that arrive together back into one "
    "segment. The wire carries the same frames; the stacks see tens of times fewer segments, "
    "at the price of a little latency (the receiving NIC holds frames up to 50 µs). Captures "
    "at a host (--pcap-at a) show the super-segments, captures of the wire the frames.",
    conclude=lambda runs: conclusion(runs, _lesson),
    extra_columns={"frames a->b": lambda r: f"{r.segments_a_to_b:,}",
                   "a TCP out": lambda r: f"{r.tcp('a', 'tcp.out_segs'):,}",
                   "b TCP in": lambda r: f"{r.tcp('b', 'tcp.in_segs'):,}",
                   "ACKs": lambda r: f"{r.tcp('b', 'tcp.out_segs'):,}",
                   "stack segs/s": lambda r: _per_second(r.segments_per_second)},
    machine_notes=_cpu_notes)
