"""One TCP connection: the TCB (``tcb``) and everything that happens to it, organised
like RFC 9293 §3.10:

==================  ==========================================================
``tcb.py``          the fields (typed), naming, logging, state changes, teardown
``output.py``       sending: data, SYN, retransmissions, our window, SACK option
``timers.py``       RTO, persist, delayed ACK, keep-alive, user timeout, TIME_WAIT
``opening.py``      OPEN, CLOSE, ABORT, the SYN options, ICMP errors
``segment_arrives.py``  §3.10.7: one method per step (acceptability/PAWS, RST, SYN,
                    ACK, URG, text, FIN)
``recovery.py``     duplicate ACKs, NewReno and SACK loss recovery (an object)
==================  ==========================================================

Each part is a class that extends the one before it (TCB -> output -> timers -> opening
-> segment arrival), so a part only calls what is below it.
"""

from __future__ import annotations

from typing import Any

from ..wire.bytes_like import BytesLike
from . import congestion
from .config import TcpConfig
from .segment_arrives import SegmentArrives
from .tcb import DEFAULT_MSS, wscale_for


class Connection(SegmentArrives):
    """A TCP connection; the layer demultiplexes segments to it and runs its timers. The
    methods here are what the application's handle (``socket.TcpSocket``) calls."""

    __slots__ = ()

    def queue_send(self, data: BytesLike) -> int:
        """SEND (RFC 9293 §3.10.2): queue what fits in the send buffer; it leaves at the
        next poll. Returns the number of bytes taken."""
        n = self.sndq.append(data)
        if n:
            self.want_output()
        return n

    def read(self, n: int) -> bytes:
        """RECEIVE (RFC 9293 §3.10.3): up to ``n`` bytes from the receive queue; a window
        update may follow (see ``after_read``)."""
        data = self.rcvq.read(n)
        self.after_read()
        return data

    def apply_options(self, cfg: TcpConfig, changes: dict[str, Any], now: int) -> None:
        """The socket's options changed (``changes`` names those that did): the switches
        take effect at once."""
        if self.deferred:
            self.make_deferred(True)
        self.cfg = cfg
        self.nodelay = cfg.nodelay
        if "keepalive" in changes or "keepalive_idle" in changes:
            self.arm_keepalive(now)
            self.layer.schedule(self)
        if "user_timeout" in changes:
            self.user_timeout = cfg.user_timeout
        if "congestion_control" in changes:
            old = self.cc
            self.cc = congestion.get(cfg.congestion_control)(self.snd_mss, cfg.initial_window)
            if old.limits_window and self.cc.limits_window:
                self.cc.cwnd, self.cc.ssthresh = old.cwnd, old.ssthresh
        self.want_output()

    def stats(self) -> dict[str, Any]:
        """What ``TcpSocket.stats()`` shows: the TCB's counters and windows."""
        if self.deferred:             # (a SYN_RECEIVED child, see Tcb.__init__)
            self.make_deferred(True)
        r = self.rtt
        recovery = self.recovery
        return {
            "state": self.state,
            "segments_in": self.segs_in, "segments_out": self.segs_out,
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
            "retransmits": self.retransmits, "dup_acks": recovery.dupacks_total,
            "rtt_samples": r.samples, "srtt": r.srtt, "rttvar": r.rttvar, "rto": r.rto,
            "last_rtt": r.last_sample, "backoff": r.backoff,
            "cwnd": self.cc.cwnd, "ssthresh": self.cc.ssthresh,
            "congestion_control": self.cc.name,
            "in_recovery": recovery.in_recovery, "sack_recovery": recovery.sack_rec,
            "snd_wnd": self.snd_wnd, "rcv_wnd": max(0, self.rcv_adv - self.rcv_nxt),
            "snd_mss": self.snd_mss, "peer_mss": self.peer_mss,
            "window_scaling": self.ws_ok, "snd_wscale": self.snd_wscale,
            "rcv_wscale": self.rcv_wscale, "timestamps": self.ts_ok, "sack": self.sack_ok,
            "sacked_bytes": recovery.sb.sacked if recovery.sb is not None else 0,
            "unacked": self.snd_max - self.snd_una, "send_queue": len(self.sndq),
            "recv_queue": len(self.rcvq),
            "ooo_bytes": self.asm.nbytes if self.asm is not None else 0,
        }


__all__ = ["DEFAULT_MSS", "Connection", "wscale_for"]
