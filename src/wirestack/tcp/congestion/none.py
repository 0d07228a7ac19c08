"""No congestion control: the learning switch that shows congestion collapse. The
congestion window is unlimited; only the peer's receive window limits the sender."""

from __future__ import annotations

from .base import CongestionControl

UNLIMITED = 1 << 62


class NoCongestionControl(CongestionControl):
    name = "none"
    limits_window = False
    __slots__ = ()

    def __init__(self, mss: int, iw_segments: int | None = None):
        super().__init__(mss, iw_segments)
        self.cwnd = UNLIMITED
        self.ssthresh = UNLIMITED

    def set_mss(self, mss: int) -> None:
        self.mss = mss

    def enable_hystart(self) -> None:
        pass                    # there is no slow start to end

    def on_ack(self, acked: int, now: int, rtt: int | None, flight: int) -> None:
        pass

    def on_loss_fast(self, flight: int, now: int) -> None:
        pass

    def on_loss_sack(self, flight: int, now: int) -> None:
        pass

    def on_recovery_dupack(self) -> None:
        pass

    def on_partial_ack(self, acked: int) -> None:
        pass

    def on_recovery_exit(self, flight: int, now: int) -> None:
        pass

    def on_rto(self, flight: int, now: int) -> None:
        pass

    def on_restart_after_idle(self) -> bool:
        return False
