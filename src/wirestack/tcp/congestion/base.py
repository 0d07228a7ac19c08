"""The interface between the TCP engine and a congestion controller.

The engine owns loss *detection* (RTO, three duplicate ACKs) and the NewReno recovery
bookkeeping (RFC 6582: ``recover``, partial/full ACKs); the controller owns the window
arithmetic: how ``cwnd`` grows on ACKs and what ``ssthresh``/``cwnd`` become on a loss.
All quantities are bytes; ``now`` and ``rtt`` (the smoothed RTT) are nanoseconds (``rtt``
is None before the first sample).

Hooks:
  ``on_ack_sample(ack, snd_max, sample)`` before on_ack: the new SND.UNA, SND.MAX and this
                                        ACK's RTT sample (HyStart++ rounds, RFC 9406)
  ``on_ack(acked, now, rtt, flight)``   new data cumulatively acknowledged, outside recovery
  ``on_loss_fast(flight, now)``         third duplicate ACK: enter fast recovery (NewReno)
  ``on_loss_sack(flight, now)``         enter SACK loss recovery (RFC 6675 §5 step 4.2)
  ``on_recovery_dupack()``              another duplicate ACK during fast recovery
  ``on_partial_ack(acked)``             RFC 6582 partial ACK during fast recovery
  ``on_recovery_exit(flight, now)``     full ACK: leave fast recovery
  ``on_rto(flight, now)``               retransmission timeout
  ``on_restart_after_idle()``           data after more than an RTO of silence (RFC 5681 §4.1)
  ``on_growth_resumed(paused)``         ACKs grow cwnd again after a time they did not
"""

from __future__ import annotations

from ...units import MS
from .hystart import DONE, HyStart

INITIAL_SSTHRESH = 1 << 62      # RFC 5681 §3.1: "arbitrarily high"


def initial_window(mss: int, segments: int | None = None) -> int:
    """RFC 5681 §3.1 (IW of 2-4 segments depending on SMSS), or a fixed number of
    segments (RFC 6928 allows 10)."""
    if segments is not None:
        return segments * mss
    if mss > 2190:
        return 2 * mss
    if mss > 1095:
        return 3 * mss
    return 4 * mss


class CongestionControl:
    name = "base"
    # False for the learning switch "no congestion control": cwnd is not a limit then,
    # and nothing may copy it to or from a real controller.
    limits_window = True

    __slots__ = ("mss", "cwnd", "ssthresh", "_ca_acc", "iw_segments", "hystart")

    def __init__(self, mss: int, iw_segments: int | None = None):
        self.mss = mss
        self.iw_segments = iw_segments
        self.cwnd = initial_window(mss, iw_segments)
        # RFC 5681 §3.1: ssthresh SHOULD be set arbitrarily high initially.
        self.ssthresh = INITIAL_SSTHRESH
        self._ca_acc = 0
        self.hystart: HyStart | None = None   # a HyStart (RFC 9406) once enable_hystart() was called

    def enable_hystart(self) -> None:
        """Use HyStart++ (RFC 9406) in the initial slow start."""
        self.hystart = HyStart()

    def hystart_active(self) -> bool:
        """HyStart++ watches this ACK: the initial slow start (or CSS) is still on."""
        return (self.hystart is not None and self.cwnd < self.ssthresh
                and self.ssthresh == INITIAL_SSTHRESH)

    def _ss_increase(self, acked: int) -> int:
        """The slow-start growth for ``acked`` new bytes: min(N, SMSS) (RFC 5681 §3.1,
        RFC 3465 with L = 1), or HyStart++'s rule (RFC 9406 §4.2) in the initial slow
        start."""
        hs = self.hystart
        if hs is not None and hs.phase is not DONE and self.ssthresh == INITIAL_SSTHRESH:
            return hs.increase(acked, self.mss)
        mss = self.mss
        return acked if acked < mss else mss

    def on_ack_sample(self, ack: int, snd_max: int, sample: int | None) -> dict[str, object] | None:
        """Called before ``on_ack`` for every ACK of new data outside recovery: ``ack`` is
        the new SND.UNA, ``snd_max`` the highest sequence number sent, ``sample`` this
        ACK's RTT sample (ns) or None. HyStart++ (RFC 9406 §4.2) counts its rounds and
        their minimum RTT here, in the initial slow start only. Returns the fields of a
        ``hystart`` event when HyStart++ changed phase, else None."""
        hs = self.hystart
        if hs is None or self.ssthresh != INITIAL_SSTHRESH or self.cwnd >= self.ssthresh:
            return None
        phase = hs.phase
        hs.on_ack(self, ack, snd_max, sample)
        if hs.phase is phase:
            return None
        return {"old": phase, "new": hs.phase, "cwnd": self.cwnd,
                "round_min_rtt_ms": (hs.cur_round_min or 0) / MS,
                "last_round_min_rtt_ms": (hs.last_round_min or 0) / MS}

    def set_mss(self, mss: int) -> None:
        """The effective MSS became known (after the handshake) or changed (PMTU)."""
        if mss != self.mss:
            segs = max(1, self.cwnd // self.mss)
            self.mss = mss
            self.cwnd = segs * mss

    def on_ack(self, acked: int, now: int, rtt: int | None, flight: int) -> None:
        raise NotImplementedError

    def on_restart_after_idle(self) -> bool:
        """RFC 5681 §4.1: the sender was idle for longer than the RTO; cwnd becomes the
        restart window RW = min(IW, cwnd). The window given up is remembered in ssthresh,
        max(ssthresh, 3/4 cwnd) (RFC 2861 §3, as Linux's tcp_cwnd_restart), so that slow
        start climbs back to most of it in a few round trips instead of stopping at an old,
        lower ssthresh and growing by one segment per round trip from there. True if cwnd
        changed (nothing is done when it is at or below RW already)."""
        rw = initial_window(self.mss, self.iw_segments)
        cwnd = self.cwnd
        if cwnd <= rw:
            return False
        keep = cwnd * 3 // 4
        if keep > self.ssthresh:
            self.ssthresh = keep
        self.cwnd = rw
        return True

    def on_growth_resumed(self, paused: int) -> None:
        """ACKs grow cwnd again after ``paused`` ns in which they did not, as the sender
        did not fill cwnd (RFC 9438 §5.8). Window arithmetic per ACK has nothing to catch
        up; a controller whose window is a function of time moves its clock on."""

    def on_loss_fast(self, flight: int, now: int) -> None:
        raise NotImplementedError

    def on_loss_sack(self, flight: int, now: int) -> None:
        # RFC 6675 §5 (4.2): the reduction of on_loss_fast, but no inflation by three
        # segments: pipe counts what left the network. So cwnd = ssthresh.
        self.on_loss_fast(flight, now)
        self.cwnd = self.ssthresh

    def on_recovery_dupack(self) -> None:
        # RFC 5681 §3.2 step 4: inflate by one segment for each further duplicate ACK,
        # which stands for a segment that has left the network.
        self.cwnd += self.mss

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 §3.2 step 5: deflate by the amount acknowledged, add back one SMSS.
        self.cwnd -= acked
        if self.cwnd < self.mss:
            self.cwnd = self.mss
        self.cwnd += self.mss

    def on_recovery_exit(self, flight: int, now: int) -> None:
        # RFC 6582 §3.2 step 6, option (1): cwnd <- min(ssthresh, max(FlightSize, SMSS) + SMSS)
        self.cwnd = min(self.ssthresh, max(flight, self.mss) + self.mss)
        self._ca_acc = 0

    def on_rto(self, flight: int, now: int) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, object]:
        d: dict[str, object] = {"cwnd": self.cwnd, "ssthresh": self.ssthresh}
        if self.hystart is not None:
            d.update(self.hystart.state())
        return d
