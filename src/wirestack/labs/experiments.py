"""Labs: switch one mechanism off and watch the failure it prevents.

Each lab runs the same transfer twice (or three times) on the same seeded wire, changing one
switch, and prints what a learner should compare. `wirestack lab` lists them;
`wirestack lab NAME [--seed S]` runs one.
"""

from __future__ import annotations

import textwrap
from typing import Callable

from . import observe
from .lab import MACHINE_NOTE, Lab, conclusion, ratio
from .connection_labs import HANDSHAKE, NAGLE_DELAYED_ACK, TIME_WAIT
from .lan_labs import ARP_QUEUE, HUB_VS_SWITCH
from .tcp_labs import BUFFERBLOAT, IDLE, KARN, SACK, WINDOW_SCALING
from . import internet
from .offload_lab import OFFLOAD
from .transfer import TransferResult, run_transfer


def _c(r: TransferResult, host: str, name: str) -> int:
    return r.counters.get(host, {}).get(name, 0)


COLUMN_VALUES: dict[str, Callable[[TransferResult], str]] = {
    "result": lambda r: ("sha256 ok" if r.sha256_ok else "CORRUPTED DATA") if r.completed else (r.error or "failed"),
    "time": lambda r: f"{r.virtual_seconds:.3f} s",
    "goodput": lambda r: f"{r.goodput_bps / 1e6:.2f} Mbit/s",
    "retransmits": lambda r: str(r.sender.get("retransmits", 0)),
    "rto fired": lambda r: str(_c(r, "a", "tcp.rto_timeouts")),
    "segments a->b": lambda r: str(r.segments_a_to_b),
    "segments b->a": lambda r: str(r.segments_b_to_a),
    "wire drops": lambda r: str(r.decisions.get("dropped_loss", 0) + r.decisions.get("queue_overflow", 0)),
    "queue overflows": lambda r: str(r.decisions.get("queue_overflow", 0)),
    "FCS drops": lambda r: str(_c(r, "b", "eth.rx_fcs_errors") + _c(r, "a", "eth.rx_fcs_errors")),
    "TCP csum drops": lambda r: str(_c(r, "b", "tcp.in_csum_errors") + _c(r, "a", "tcp.in_csum_errors")),
    "IP csum drops": lambda r: str(_c(r, "b", "ip.in_bad_checksum") + _c(r, "a", "ip.in_bad_checksum")),
    "ooo dropped": lambda r: str(_c(r, "b", "tcp.ofo_dropped")),
}

WAN = dict(delay_ms=20, rate_mbps=10, queue_limit=60)


def _checksums(seed):
    link = dict(delay_ms=5, rate_mbps=10, corrupt=0.02)
    return [
        ("FCS checked by the NIC", run_transfer(300_000, seed=seed, **link)),
        ("FCS off: TCP checksum", run_transfer(300_000, seed=seed, check_fcs=False, **link)),
        ("FCS off, TCP checksum off", run_transfer(300_000, seed=seed, check_fcs=False,
                                                   host_tcp={"verify_checksum": False}, deadline=60,
                                                   **link)),
    ]


def _retransmission(seed):
    link = dict(WAN, loss=0.02)
    return [("retransmission on", run_transfer(500_000, seed=seed, **link)),
            ("retransmission off", run_transfer(500_000, seed=seed, tcp={"retransmission": False},
                                                deadline=120, **link))]


def _fast_retransmit(seed):
    link = dict(WAN, loss=0.01)
    return [("fast retransmit on", run_transfer(1_000_000, seed=seed, **link)),
            ("fast retransmit off", run_transfer(1_000_000, seed=seed, tcp={"fast_retransmit": False}, **link))]


def _congestion(seed):
    link = dict(delay_ms=20, jitter_ms=1, rate_mbps=10, queue_limit=20)   # jitter: the seed matters
    opts = {"rcvbuf": 1 << 20, "sndbuf": 1 << 20}
    return [("NewReno", run_transfer(2_000_000, seed=seed, tcp=dict(opts, congestion_control="newreno"), **link)),
            ("no congestion control", run_transfer(2_000_000, seed=seed, tcp=dict(opts, congestion_control="none"),
                                                   **link))]


def _nagle(seed):
    link = dict(delay_ms=20, jitter_ms=1, rate_mbps=10)   # jitter: the seed matters
    # An interactive sender: 400 writes of 10 bytes, one every 2 ms (keystrokes, small RPCs).
    kw = dict(writes=400, write_interval=0.002, seed=seed, **link)
    return [("Nagle on", run_transfer(4_000, **kw)),
            ("Nagle off (nodelay)", run_transfer(4_000, tcp={"nodelay": True}, **kw))]


def _delayed_ack(seed):
    # No bottleneck, no loss: only the ACKs differ (jitter so that the seed matters).
    link = dict(delay_ms=20, jitter_ms=1, rate_mbps=100)
    return [("delayed ACK on", run_transfer(1_000_000, seed=seed, **link)),
            ("delayed ACK off", run_transfer(1_000_000, seed=seed, tcp={"delayed_ack": False}, **link))]


def _ooo(seed):
    link = dict(WAN, reorder=0.05, reorder_delay_ms=5)
    return [("out-of-order buffering on", run_transfer(1_000_000, seed=seed, **link)),
            ("out-of-order buffering off", run_transfer(1_000_000, seed=seed, tcp={"ooo_buffering": False},
                                                        **link))]


def _drops(r, *names) -> int:
    return sum(_c(r, h, n) for h in "ab" for n in names)


def _checksums_lesson(nic, tcp_sum, none):
    tail = ("the data arrived corrupted (sha256 mismatch)" if none.completed and not none.sha256_ok
            else f"the connection derailed ({none.error or 'failed'})" if not none.completed
            else "this seed happened to flip only bits nobody reads")
    return (f"the NIC's CRC-32 dropped {_drops(nic, 'eth.rx_fcs_errors')} damaged frames; with the FCS off "
            f"IP dropped {_drops(tcp_sum, 'ip.in_bad_checksum')} and TCP {_drops(tcp_sum, 'tcp.in_csum_errors')}, "
            f"and TCP retransmitted {tcp_sum.sender.get('retransmits', 0)} segments; with neither check, {tail}.")


def _retransmission_lesson(on, off):
    return (f"with retransmission the {on.size:,} bytes took {on.virtual_seconds:.3f} s despite "
            f"{on.decisions.get('dropped_loss', 0)} lost frames; without it the receiver had {off.received:,} "
            f"bytes when the run gave up after {off.virtual_seconds:.0f} s.")


def _fast_lesson(on, off):
    return (f"with fast retransmit {on.virtual_seconds:.3f} s and {_c(on, 'a', 'tcp.rto_timeouts')} timeouts; "
            f"without, {off.virtual_seconds:.3f} s and {_c(off, 'a', 'tcp.rto_timeouts')} timeouts: "
            f"{ratio(off.virtual_seconds, on.virtual_seconds)} slower.")


def _congestion_lesson(reno, none):
    return (f"NewReno: {reno.decisions.get('queue_overflow', 0)} queue overflows, "
            f"{reno.goodput_bps / 1e6:.2f} Mbit/s; no congestion control: "
            f"{none.decisions.get('queue_overflow', 0)} overflows, {none.goodput_bps / 1e6:.2f} Mbit/s, "
            f"{none.sender.get('retransmits', 0)} retransmissions (NewReno {reno.sender.get('retransmits', 0)}).")


def _nagle_lesson(on, off):
    return (f"Nagle on: {on.segments_a_to_b} segments carried the 400 writes; nodelay: {off.segments_a_to_b} "
            f"({ratio(off.segments_a_to_b, on.segments_a_to_b)} as many).")


def _delack_lesson(on, off):
    return (f"the receiver sent {on.segments_b_to_a} segments with delayed ACKs and {off.segments_b_to_a} "
            f"without ({ratio(off.segments_b_to_a, on.segments_b_to_a)}).")


def _ooo_lesson(on, off):
    return (f"buffering on: {on.sender.get('retransmits', 0)} retransmissions, {on.virtual_seconds:.3f} s; "
            f"off: {_c(off, 'b', 'tcp.ofo_dropped')} early segments dropped, "
            f"{off.sender.get('retransmits', 0)} retransmissions, {off.virtual_seconds:.3f} s.")


LABS: dict[str, Lab] = {lab.name: lab for lab in (
    Lab("checksums", "Why checksums: the FCS, then the TCP checksum",
        "2% of frames get a bit flipped on the wire. Who catches them?", _checksums,
        ("result", "FCS drops", "IP csum drops", "TCP csum drops", "retransmits"),
        "The NIC's CRC-32 drops damaged frames before IP sees them. Without it, the IP header "
        "and TCP checksums catch the damage and TCP retransmits. With neither, damaged segments "
        "are taken as they are: flipped payload bits reach the application (sha256 mismatch) "
        "and flipped header bits (sequence numbers, flags, window) derail the connection.",
        conclude=lambda runs: conclusion(runs, _checksums_lesson)),
    Lab("retransmission", "Why retransmit: a lossy wire without it",
        "2% loss. What if lost segments are never sent again?", _retransmission,
        ("result", "time", "retransmits", "wire drops"),
        "Without retransmission the first lost segment leaves a hole the receiver can never "
        "fill: it cannot deliver anything after the hole, and the transfer stalls for good.",
        conclude=lambda runs: conclusion(runs, _retransmission_lesson)),
    Lab("fast-retransmit", "Why fast retransmit: three duplicate ACKs vs. the RTO",
        "1% loss on a 40 ms path. How long does recovery take?", _fast_retransmit,
        ("result", "time", "goodput", "retransmits", "rto fired"),
        "Duplicate ACKs tell the sender about a loss within one RTT; without them every loss "
        "waits for the retransmission timer (at least 1 s, RFC 6298) and cwnd drops to one segment.",
        conclude=lambda runs: conclusion(runs, _fast_lesson)),
    Lab("congestion", "Why congestion control: a sender that ignores the bottleneck",
        "A 10 Mbit/s bottleneck with a 20-frame queue and a 1 MB receive window.", _congestion,
        ("result", "time", "goodput", "retransmits", "queue overflows"),
        "Without congestion control the sender fills the receiver's whole window at once; the "
        "bottleneck queue overflows over and over, and the link carries retransmissions instead "
        "of new data.",
        conclude=lambda runs: conclusion(runs, _congestion_lesson)),
    Lab("nagle", "Why Nagle: tinygrams from an interactive sender",
        "400 writes of 10 bytes, 2 ms apart, on a 40 ms path.", _nagle,
        ("result", "time", "segments a->b", "segments b->a"),
        "With Nagle, small writes wait while data is unacknowledged and leave together: far fewer "
        "segments (each costing 40+ bytes of headers). nodelay sends each write at once.",
        conclude=lambda runs: conclusion(runs, _nagle_lesson)),
    Lab("delayed-ack", "Why delayed ACKs: half the ACK traffic",
        "A 1 MB bulk transfer on a 40 ms path.", _delayed_ack,
        ("result", "time", "segments a->b", "segments b->a"),
        "Acknowledging every second full segment (RFC 1122 4.2.3.2) halves the segments the "
        "receiver sends. (Where a queue is the bottleneck, more ACKs also grow cwnd faster in "
        "slow start, so it overshoots sooner: try `wirestack lab congestion`.)",
        conclude=lambda runs: conclusion(runs, _delack_lesson)),
    Lab("ooo", "Why buffer out-of-order segments",
        "5% of frames are held back 5 ms, so later ones overtake them.", _ooo,
        ("result", "time", "retransmits", "ooo dropped"),
        "A receiver that drops segments arriving early makes the sender retransmit data that had "
        "already arrived; keeping them (bounded) turns reordering into a small delay.",
        conclude=lambda runs: conclusion(runs, _ooo_lesson)),
    TIME_WAIT, KARN, HUB_VS_SWITCH, BUFFERBLOAT, ARP_QUEUE, SACK, WINDOW_SCALING, NAGLE_DELAYED_ACK,
    HANDSHAKE, IDLE,
    internet.traceroute_lab(),
    internet.pmtud_lab(),
    internet.fairness_lab(),
    OFFLOAD,
)}


def _cell(lab: Lab, column: str, r) -> str:
    fn = lab.extra_columns.get(column) or COLUMN_VALUES[column]
    return fn(r)


def format_lab(lab: Lab, runs: list[tuple[str, TransferResult]]) -> str:
    rows = [("",) + lab.columns] + [(label,) + tuple(_cell(lab, c, r) for c in lab.columns)
                                    for label, r in runs]
    rows, notes = _footnotes(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"lab {lab.name}: {lab.title}", _wrap(lab.question), ""]
    for row in rows:
        lines.append(("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                       for i, (cell, w) in enumerate(zip(row, widths)))).rstrip())
    lines += notes
    if lab.machine_notes is not None:
        lines += [""] + [f"  {MACHINE_NOTE}, {note}" for note in lab.machine_notes(runs)]
    lines += ["", _wrap(lab.lesson)]
    if lab.conclude is not None:
        lines += ["", _wrap("In this run: " + lab.conclude(runs))]
    return "\n".join(lines)


def _footnotes(rows: list[tuple[str, ...]], width: int = 100):
    """Keep the table within ``width`` columns: a long cell (a failure's explanation) moves
    below the table as a numbered note."""
    notes: list[str] = []

    def total(rs):
        return 2 + sum(max(len(r[i]) for r in rs) + 2 for i in range(len(rs[0])))

    rows = [list(r) for r in rows]
    moved: set[tuple[int, int]] = set()
    while total(rows) > width:
        # A cell moves once: its stand-in "word (n)" may still be long, and moving it again
        # would never end when the table cannot fit (too many columns).
        candidates = [(i, j) for i in range(1, len(rows)) for j in range(1, len(rows[i]))
                      if (i, j) not in moved]
        if not candidates:
            break
        i, j = max(candidates, key=lambda ij: len(rows[ij[0]][ij[1]]))
        cell = rows[i][j]
        if len(cell) <= 12:
            break
        notes.append(_wrap(f"({len(notes) + 1}) {rows[i][0]}: {cell}"))
        rows[i][j] = f"{cell.split(':')[0][:10]} ({len(notes)})"
        moved.add((i, j))
    return [tuple(r) for r in rows], ([""] + notes if notes else [])


def _wrap(text: str, width: int = 100) -> str:
    """Indented prose that fits a terminal (and a pasted issue) of ``width`` columns."""
    return textwrap.fill(text, width=width, initial_indent="  ", subsequent_indent="  ")


def run_lab(name: str, seed: int = 1) -> str:
    lab = LABS[name]
    runs = lab.runs(seed)
    observe.label_runs(runs)
    return format_lab(lab, runs)
