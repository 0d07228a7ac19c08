"""Plots of one TCP connection from a simulation run (needs matplotlib, an optional extra).

* the time-sequence graph (as in tcptrace/Wireshark's Stevens graph): each data segment a
  vertical bar from its first to its last sequence number, retransmissions in red, the
  receiver's cumulative ACK and advertised window edge as step lines, SACK blocks as
  short bars;
* cwnd and ssthresh over time, from the sender's event log;
* RTT samples, SRTT and RTO over time, from the sender's event log.
"""

from __future__ import annotations

from collections import deque

from ..wire import MalformedPacket, parse_frame


class ConnectionRecorder:
    """Watches the first TCP connection from ``a`` to ``b`` at a's own NIC — the sender's
    view, as tcptrace draws it: data when a sends it, ACKs when they reach a — and keeps
    what the plots need. Sequence numbers are relative to the sender's ISN."""

    def __init__(self, net, link, a, b):
        self.net = net
        self.a = a
        self.b = b
        self.key = None
        self.isn = None
        self.peer_isn = None
        self.wscale = 0
        self.max_end = 0
        self.segments: list[tuple[float, int, int, bool]] = []   # t, start, end, retransmitted
        self.acks: list[tuple[float, int, int]] = []             # t, ack, right window edge
        self.sacks: list[tuple[float, int, int]] = []            # t, left, right
        self.rtts: list[tuple[float, float]] = []                # t, ms (seen on the wire)
        self._unacked = deque()   # (end, sent at, retransmitted) of first transmissions
        self._retransmitted: set[int] = set()
        self.fin_at = None
        self.control_retransmissions = 0   # SYNs and FINs sent again (no data to draw)
        a.nics[0].add_tap(lambda now, direction, frame: self._on_frame(now, frame))

    def _on_frame(self, now: int, frame: bytes) -> None:
        try:
            f = parse_frame(frame, verify_checksums=False)
        except MalformedPacket:
            return
        t = f.tcp
        if t is None or f.ip is None:
            return
        a_ip = self.a.host.interfaces[0].address
        fwd = f.ip.src == a_ip
        if fwd and t.syn and not t.ack_flag and self.key in (None, (t.sport, t.dport)):
            if self.key is not None:
                self.control_retransmissions += 1   # the SYN again
            self.key = (t.sport, t.dport)
            self.isn = t.seq
            return
        if self.key is None:
            return
        if fwd and (t.sport, t.dport) == self.key:
            n = len(f.payload)
            if t.fin:
                # A FIN sent again is a retransmission too (the sender's counter says so).
                fin_at = ((t.seq - self.isn) & 0xFFFFFFFF) + n
                if self.fin_at == fin_at:
                    self.control_retransmissions += 1
                self.fin_at = fin_at
            if n:
                start = (t.seq - self.isn) & 0xFFFFFFFF
                end = start + n
                # Any segment that starts below the highest byte sent carries old data:
                # a retransmission (perhaps repacketized, with new bytes at its end).
                retrans = start < self.max_end
                if retrans:
                    self._retransmitted.add(end)
                else:
                    self._unacked.append((end, now))
                self.max_end = max(self.max_end, end)
                self.segments.append((now / 1e9, start, end, retrans))
        elif not fwd and (t.dport, t.sport) == self.key:
            if t.syn:
                self.peer_isn = t.seq
                if t.options.wscale is not None:
                    self.wscale = t.options.wscale
                return
            if t.ack_flag:
                ack = (t.ack - self.isn) & 0xFFFFFFFF
                self.acks.append((now / 1e9, ack, ack + (t.window << self.wscale)))
                # An RTT sample per newly acknowledged segment that was sent once only
                # (Karn's rule: an ACK cannot tell which copy of a retransmission it answers).
                q = self._unacked
                sample = None
                while q and q[0][0] <= ack:
                    end, sent = q.popleft()
                    if end not in self._retransmitted:
                        sample = (now - sent) / 1e6
                if sample is not None:
                    self.rtts.append((now / 1e9, sample))
                for left, right in t.options.sack_blocks:
                    self.sacks.append((now / 1e9, (left - self.isn) & 0xFFFFFFFF,
                                       (right - self.isn) & 0xFFFFFFFF))

    @property
    def retransmissions(self) -> int:
        """Every segment the sender sent again: its tcp.retrans_segs counter, the figure the
        demo prints (the wire shows fewer when a retried SYN never got past ARP)."""
        return self.a.counters["tcp.retrans_segs"]

    def _conn_events(self, field: str):
        out = []
        for e in self.a.host.log.entries:
            if field in e and e.get("conn", "").endswith(f">{self.b.ip}:{self.key[1]}" if self.key else ""):
                out.append((e["t"] / 1e9, e[field]))
        return out

    def plot(self, path: str) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        last = max([x[0] for x in self.segments] + [0.0])
        fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 12), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
        ok = [(t, s, e) for t, s, e, r in self.segments if not r]
        re = [(t, s, e) for t, s, e, r in self.segments if r]
        if ok:
            ax1.vlines([x[0] for x in ok], [x[1] for x in ok], [x[2] for x in ok], colors="tab:blue",
                       linewidth=1.2, label="data segment")
        if re:
            ax1.vlines([x[0] for x in re], [x[1] for x in re], [x[2] for x in re], colors="tab:red",
                       linewidth=2.0)
            ax1.plot([x[0] for x in re], [x[2] for x in re], "x", color="tab:red", markersize=6,
                     label=f"retransmitted data segment ({len(re)})")
        if self.retransmissions:
            ax1.text(0.99, 0.02, f"retransmissions: {self.retransmissions} segments (tcp.retrans_segs), "
                     f"{len(re)} with data drawn in red, {self.control_retransmissions} SYN/FIN seen again",
                     transform=ax1.transAxes, ha="right", va="bottom", fontsize=9, color="tab:red")
        if self.acks:
            ts = [x[0] for x in self.acks]
            ax1.step(ts, [x[1] for x in self.acks], where="post", color="tab:green", linewidth=0.9,
                     label="cumulative ACK")
            ax1.step(ts, [x[2] for x in self.acks], where="post", color="tab:olive", linewidth=0.7,
                     linestyle="--", label="receive window edge")
        if self.sacks:
            ax1.vlines([x[0] for x in self.sacks], [x[1] for x in self.sacks], [x[2] for x in self.sacks],
                       colors="tab:purple", linewidth=3, alpha=0.5, label="SACK block")
        ax1.set_ylabel("relative sequence number (bytes)")
        ax1.set_title(f"time-sequence graph: {self.a.ip} -> {self.b.ip}")
        _legend(ax1)
        ax1.grid(alpha=0.3)

        for field, style in (("cwnd", "-"), ("ssthresh", "--")):
            pts = [(t, v) for t, v in self._conn_events(field) if isinstance(v, (int, float)) and v < 1 << 30]
            if pts:
                ax2.step([p[0] for p in pts], [p[1] for p in pts], where="post", linestyle=style, label=field)
        ax2.set_ylabel("bytes")
        ax2.set_title("congestion window and slow-start threshold (sender)")
        _legend(ax2)
        ax2.grid(alpha=0.3)

        samples = [(t, v) for t, v in self._conn_events("rtt_ms") if isinstance(v, (int, float))]
        label = "RTT sample (the sender's estimator input)"
        if not samples:  # an engine that logs no samples: measure them on the wire instead
            samples, label = self.rtts, "RTT sample (data sent -> its ACK back, Karn)"
        if samples:
            ax3.plot([p[0] for p in samples], [p[1] for p in samples], ".", markersize=3,
                     color="tab:gray", label=label)
        srtt = [(t, v) for t, v in self._conn_events("srtt_ms") if isinstance(v, (int, float))]
        rto = [(t, v) for t, v in self._conn_events("rto_ms") if isinstance(v, (int, float))]
        if srtt:
            ax3.step([p[0] for p in srtt], [p[1] for p in srtt], where="post", label="SRTT")
        top = 1.3 * max([v for _, v in samples + srtt] + [1.0])
        if rto:
            ax3.step([p[0] for p in rto], [p[1] for p in rto], where="post", linestyle="--", label="RTO")
            if max(v for _, v in rto) > top:
                ax3.text(0.99, 0.95, f"RTO {rto[-1][1]:.0f} ms at the end (above the scale: RFC 6298's "
                         f"1 s floor)", transform=ax3.transAxes, ha="right", va="top", fontsize=8)
        ax3.set_ylim(0, top)
        ax3.set_ylabel("ms")
        if last:
            first = min(x[0] for x in self.segments)
            ax3.set_xlim(max(0.0, first - 0.02 * (last - first + 1e-3)), last + 0.05 * (last - first + 1e-3))
        ax3.set_xlabel("virtual time (s)")
        ax3.set_title("round-trip time seen by the sender")
        _legend(ax3)
        ax3.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _legend(ax) -> None:
    """A legend only for a panel that has something in it (a connection that never opened
    has no data, no cwnd, no RTT: matplotlib would warn on stderr)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
