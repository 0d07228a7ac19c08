"""Retransmission timeout estimation, RFC 6298 (integer nanoseconds)."""

from __future__ import annotations

_CLOCK_G = 1_000_000  # clock granularity G in RFC 6298 §2 (1 ms, like Linux's jiffies)


class RttEstimator:
    __slots__ = ("srtt", "rttvar", "base_rto", "backoff", "rto_min", "rto_max", "samples",
                 "last_sample")

    def __init__(self, rto_initial: int, rto_min: int, rto_max: int):
        self.srtt: int | None = None
        self.rttvar: int | None = None
        self.base_rto = rto_initial     # RFC 6298 §2.1: RTO <- 1 second before a sample
        self.backoff = 0                # number of doublings in force (§5.5)
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.samples = 0
        self.last_sample: int | None = None

    @property
    def rto(self) -> int:
        """The timeout to arm now: the estimate doubled once per expiry, capped (§5.5)."""
        r = self.base_rto << self.backoff
        return r if r < self.rto_max else self.rto_max

    def sample(self, r: int, weight: int = 1) -> None:
        """One RTT measurement R (ns) from a segment that was not retransmitted (§2.2, §2.3),
        or from a timestamp echo (RFC 7323 §4). ``weight`` > 1 divides the gains alpha and
        beta by it (RFC 7323 Appendix G: ExpectedSamples per RTT)."""
        if r < 0:
            r = 0
        self.samples += 1
        self.last_sample = r
        srtt, rttvar = self.srtt, self.rttvar
        if srtt is None or rttvar is None:
            srtt = r
            rttvar = r >> 1
        elif weight <= 1:
            # RTTVAR <- (1 - 1/4) * RTTVAR + 1/4 * |SRTT - R'| ; SRTT <- 7/8 SRTT + 1/8 R'
            rttvar += (abs(srtt - r) - rttvar) >> 2
            srtt += (r - srtt) >> 3
        else:
            rttvar += int((abs(srtt - r) - rttvar) / (4 * weight))
            srtt += int((r - srtt) / (8 * weight))
        self.srtt, self.rttvar = srtt, rttvar
        k = rttvar << 2
        rto = srtt + (k if k > _CLOCK_G else _CLOCK_G)
        if rto < self.rto_min:   # §2.4
            rto = self.rto_min
        if rto > self.rto_max:   # §2.5
            rto = self.rto_max
        self.base_rto = rto
        # A fresh sample ends the backoff (RFC 6298 §5.7 with Karn's algorithm): the
        # doubling is kept only until an ACK for a segment that was not retransmitted.
        self.backoff = 0

    def on_timeout(self) -> None:
        """§5.5: back off the timer (double it), up to the maximum."""
        if (self.base_rto << self.backoff) < self.rto_max:
            self.backoff += 1
