"""Reno window arithmetic (RFC 5681) used with NewReno recovery (RFC 6582)."""

from __future__ import annotations

from .base import CongestionControl


class NewReno(CongestionControl):
    name = "newreno"
    __slots__ = ()

    def on_ack(self, acked: int, now: int, rtt: int | None, flight: int) -> None:
        mss = self.mss
        if self.cwnd < self.ssthresh:
            # Slow start (RFC 5681 §3.1): cwnd += min(N, SMSS) per ACK (RFC 3465, L = 1),
            # or HyStart++ (RFC 9406) in the initial slow start.
            if self.hystart is None:
                self.cwnd += acked if acked < mss else mss
            else:
                self.cwnd += self._ss_increase(acked)
        else:
            # Congestion avoidance, byte counting (RFC 5681 §3.1, RFC 3465 §2.1):
            # one SMSS more per cwnd's worth of acknowledged bytes.
            self._ca_acc += acked
            if self._ca_acc >= self.cwnd:
                self._ca_acc -= self.cwnd
                self.cwnd += mss

    def _halve(self, flight: int) -> None:
        # RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS)
        half = flight >> 1
        self.ssthresh = half if half > 2 * self.mss else 2 * self.mss

    def on_loss_fast(self, flight: int, now: int) -> None:
        # RFC 5681 §3.2 steps 2-3 (RFC 6582 §3.2 step 2): ssthresh from FlightSize;
        # cwnd = ssthresh + 3*SMSS for the three segments that left the network.
        self._halve(flight)
        self.cwnd = self.ssthresh + 3 * self.mss
        self._ca_acc = 0

    def on_rto(self, flight: int, now: int) -> None:
        # RFC 5681 §3.1 eq. (4) and: cwnd <- loss window = 1 SMSS.
        self._halve(flight)
        self.cwnd = self.mss
        self._ca_acc = 0
