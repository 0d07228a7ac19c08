"""CUBIC (RFC 9438): the window grows as a cubic function of the time since the last
congestion event, so its growth does not depend on the RTT.

    W_cubic(t) = C · (t - K)³ + W_max                      (RFC 9438 §4.2, eq. 1)
    K = ∛((W_max - cwnd_epoch) / C)                         (eq. 2)

W_max is the window just before the last reduction. After a loss the window starts at
beta_cubic · W_max, grows fast and then slower towards W_max (the concave region, §4.4),
stays near it, and beyond it probes faster and faster (the convex region, §4.5).
Beside the curve runs W_est, the window Reno would have with the same loss history
(AIMD with alpha_cubic = 3·(1-beta)/(1+beta), §4.3): whenever the curve is below it, the
"Reno-friendly region" (short RTTs, small windows), cwnd follows W_est instead.

The RFC computes in segments and seconds; the engine keeps cwnd in bytes and time in
integer nanoseconds, so the conversions are at the edges. Time is the ``now`` passed to
each hook (sans-I/O: no clock is read). Slow start is the standard one (RFC 5681), with
HyStart++ (RFC 9406, ``hystart``) in the initial slow start when the engine enables it;
RFC 9438 §4.10 allows either. When HyStart++ ends slow start without a loss, the first
congestion avoidance stage starts with W_max = cwnd and K = 0 (``_reset_curve``).
"""

from __future__ import annotations

from .base import CongestionControl

C = 0.4                                  # RFC 9438 §5.1: segments / s³
BETA = 0.7                               # RFC 9438 §4.6: multiplicative decrease factor
ALPHA = 3 * (1 - BETA) / (1 + BETA)      # RFC 9438 §4.3: Reno-friendly additive increase
_NS = 1e-9


def _cbrt(x: float) -> float:
    return float(x ** (1 / 3)) if x >= 0 else -float((-x) ** (1 / 3))


class Cubic(CongestionControl):
    name = "cubic"
    __slots__ = ("w_max", "k", "w_est", "cwnd_prior", "epoch", "_cwnd_f", "region",
                 "fast_convergence", "_reset_curve")

    def __init__(self, mss: int, iw_segments: int | None = None):
        super().__init__(mss, iw_segments)
        self.w_max = 0.0          # segments; 0 until the first congestion event
        self.k = 0.0              # seconds
        self.w_est = 0.0          # segments (Reno-friendly estimate)
        self.cwnd_prior = 0.0     # segments: cwnd before the last reduction
        self.epoch: int | None = None   # ns: start of the current congestion avoidance stage
        self._cwnd_f = float(self.cwnd)   # bytes, with the fraction the int cwnd drops
        self.region = "slow_start"
        self.fast_convergence = True      # RFC 9438 §4.7
        self._reset_curve = True          # no loss yet, or after an RTO (§4.8): K = 0

    # ------------------------------------------------------------------ the curve
    def w_cubic(self, t: float) -> float:
        """W_cubic(t) in segments, t in seconds since the epoch (RFC 9438 eq. 1)."""
        d = t - self.k
        return C * d * d * d + self.w_max

    def on_ack(self, acked: int, now: int, rtt: int | None, flight: int) -> None:
        mss = self.mss
        if int(self._cwnd_f) != self.cwnd:
            self._cwnd_f = float(self.cwnd)      # changed from outside (MSS, SYN loss)
        if self.cwnd < self.ssthresh:
            # Slow start as in RFC 5681 §3.1 (RFC 9438 §4.10), or HyStart++ (RFC 9406).
            if self.hystart is None:
                self.cwnd += acked if acked < mss else mss
            else:
                self.cwnd += self._ss_increase(acked)
            self._cwnd_f = float(self.cwnd)
            self.region = "slow_start"
            return
        cw = self._cwnd_f / mss
        if self.epoch is None:
            # The start of a congestion avoidance stage (RFC 9438 §4.2).
            self.epoch = now
            if self._reset_curve:
                # No congestion event yet, or after a timeout (§4.8): K = 0, W_max = cwnd.
                self.w_max = cw
                self.k = 0.0
                self._reset_curve = False
            else:
                self.k = _cbrt((self.w_max - cw) / C)
            self.w_est = cw
        t = (now - self.epoch) * _NS
        segs = acked / mss
        # §4.3: W_est grows like Reno; alpha becomes 1 once W_est reached cwnd_prior.
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA
        self.w_est += alpha * segs / cw
        if self.w_cubic(t) < self.w_est:
            new = self.w_est if self.w_est > cw else cw      # Reno-friendly region
            self.region = "reno_friendly"
        else:
            # §4.4, §4.5: aim at W_cubic one RTT ahead, bounded to [cwnd, 1.5 cwnd].
            r = rtt * _NS if rtt else 0.0
            target = self.w_cubic(t + r)
            if target < cw:
                target = cw
            elif target > 1.5 * cw:
                target = 1.5 * cw
            new = cw + (target - cw) / cw * segs
            self.region = "concave" if cw < self.w_max else "convex"
        self._cwnd_f = new * mss
        self.cwnd = int(self._cwnd_f)

    def on_restart_after_idle(self) -> bool:
        # RFC 5681 §4.1's restart window; the congestion avoidance stage that follows
        # starts a curve of its own (an old epoch would make W_cubic(t) jump).
        if not super().on_restart_after_idle():
            return False
        self._cwnd_f = float(self.cwnd)
        self.epoch = None
        return True

    def on_growth_resumed(self, paused: int) -> None:
        # RFC 9438 §5.8: t must not count the time the flow did not use its window, or
        # W_cubic(t) would have run far ahead of cwnd: the curve is shifted later instead.
        if self.epoch is not None:
            self.epoch += paused

    # ------------------------------------------------------------------ reductions
    def _reduce(self, flight: int) -> None:
        """RFC 9438 §4.6 and §4.7: remember W_max (with fast convergence), ssthresh =
        flight_size · beta_cubic (at least 2 SMSS)."""
        mss = self.mss
        cw = self.cwnd / mss
        self.cwnd_prior = cw
        if self.fast_convergence and cw < self.w_max:
            # §4.7: a flow whose W_max keeps falling releases bandwidth faster.
            self.w_max = cw * (1 + BETA) / 2
        else:
            self.w_max = cw
        ss = int(flight * BETA)
        self.ssthresh = ss if ss > 2 * mss else 2 * mss
        self.epoch = None
        self._ca_acc = 0

    def on_loss_fast(self, flight: int, now: int) -> None:
        self._reduce(flight)
        self._reset_curve = False
        # The engine's NewReno-style fast recovery (RFC 5681 §3.2 step 3) inflates by the
        # three segments that left the network; SACK recovery calls on_loss_sack instead.
        self.cwnd = self.ssthresh + 3 * self.mss
        self._cwnd_f = float(self.cwnd)

    def on_recovery_exit(self, flight: int, now: int) -> None:
        super().on_recovery_exit(flight, now)
        self._cwnd_f = float(self.cwnd)

    def on_partial_ack(self, acked: int) -> None:
        super().on_partial_ack(acked)
        self._cwnd_f = float(self.cwnd)

    def on_recovery_dupack(self) -> None:
        super().on_recovery_dupack()
        self._cwnd_f = float(self.cwnd)

    def on_loss_sack(self, flight: int, now: int) -> None:
        super().on_loss_sack(flight, now)
        self._cwnd_f = float(self.cwnd)

    def on_rto(self, flight: int, now: int) -> None:
        # RFC 9438 §4.8: ssthresh with beta_cubic, cwnd = 1 SMSS (RFC 5681), and the next
        # congestion avoidance stage starts a fresh curve (K = 0, W_max = its cwnd).
        self._reduce(flight)
        self._reset_curve = True
        self.cwnd = self.mss
        self._cwnd_f = float(self.cwnd)

    def state(self) -> dict[str, object]:
        d = super().state()
        d.update(w_max=self.w_max * self.mss, k=self.k, w_est=self.w_est * self.mss,
                 region=self.region)
        return d
