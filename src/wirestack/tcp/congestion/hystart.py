"""HyStart++ (RFC 9406): leave slow start when the round-trip time starts to grow, before
the window overshoots the path and a whole window of losses follows.

Standard slow start doubles the window every round trip until a loss: with a queue at the
bottleneck, the window ends up at up to twice what the path holds (BDP + queue), and half
of the last round is dropped. HyStart++ watches the *minimum* RTT of each round (§4.2):
while the window is below the BDP, the queue empties between the bursts of a round and the
first ACKs of each round see the bare path delay; once the window exceeds the BDP, a
standing queue forms and the round's minimum RTT rises. When it rises by more than
``RttThresh`` (an eighth of the previous round's minimum, clamped to [4 ms, 16 ms]),
slow start gives way to Conservative Slow Start (CSS): growth divided by
``CSS_GROWTH_DIVISOR`` for up to ``CSS_ROUNDS`` rounds. If the RTT falls back below the
baseline during CSS, the increase was jitter and slow start resumes; after ``CSS_ROUNDS``
rounds CSS ends with ssthresh = cwnd (congestion avoidance). A loss in either phase ends
HyStart++ the usual way (the controller sets ssthresh).

As §4.3 recommends, HyStart++ runs only in the initial slow start (ssthresh still at its
initial "arbitrarily high" value, RFC 5681 §3.1): later slow starts (after an RTO) stop at
the ssthresh that the loss set.

The engine feeds this object (``on_ack``) with every ACK of new data while the window is in
the initial slow start, with the RTT sample the ACK gave (RFC 7323 timestamps give one per
ACK; without them the engine times one segment per round, too few for §4.2's
``N_RTT_SAMPLE``, so HyStart++ then never fires and slow start is the standard one). The
controller asks ``increase(acked, mss)`` how much cwnd grows. Times are nanoseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...units import MS

if TYPE_CHECKING:
    from .base import CongestionControl

# RFC 9406 §4.3 constants.
MIN_RTT_THRESH = 4 * MS
MAX_RTT_THRESH = 16 * MS
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5
L_NON_PACED = 8          # §4.3: a non-paced sender limits growth to L·SMSS per ACK

SLOW_START = "slow_start"
CSS = "css"
DONE = "done"


class HyStart:
    __slots__ = ("phase", "window_end", "last_round_min", "cur_round_min", "samples",
                 "css_baseline", "css_rounds", "_frac", "exits", "resumes")

    def __init__(self) -> None:
        self.phase = SLOW_START
        self.window_end: int | None = None       # the round ends when an ACK covers this
        self.last_round_min: int | None = None   # lastRoundMinRTT (None = infinity)
        self.cur_round_min: int | None = None    # currentRoundMinRTT
        self.samples = 0                         # rttSampleCount
        self.css_baseline: int | None = None     # cssBaselineMinRtt
        self.css_rounds = 0
        self._frac = 0                  # CSS growth below one byte, carried over
        self.exits = 0                  # slow start -> CSS transitions (for the tests/log)
        self.resumes = 0                # CSS -> slow start (a spurious exit, §4.2)

    def on_ack(self, cc: CongestionControl, ack: int, snd_nxt: int, rtt: int | None) -> None:
        """An ACK of new data in the initial slow start (or CSS). ``ack`` is the new
        SND.UNA, ``snd_nxt`` the highest sequence number sent, ``rtt`` this ACK's RTT
        sample or None. May end CSS by setting ``cc.ssthresh`` (RFC 9406 §4.2)."""
        we = self.window_end
        if we is None or ack >= we:
            # A new round starts (§4.2): remember the last round's minimum.
            if we is not None:
                self.last_round_min = self.cur_round_min
                if self.phase is CSS:
                    self.css_rounds += 1
                    if self.css_rounds >= CSS_ROUNDS:
                        # §4.2: CSS_ROUNDS rounds in CSS: enter congestion avoidance.
                        self.phase = DONE
                        cc.ssthresh = cc.cwnd
                        return
            self.cur_round_min = None
            self.samples = 0
            self.window_end = snd_nxt
        if rtt is None:
            return
        cur = self.cur_round_min
        if cur is None or rtt < cur:
            self.cur_round_min = cur = rtt
        self.samples += 1
        if self.samples < N_RTT_SAMPLE:
            return
        last = self.last_round_min
        if self.phase is SLOW_START:
            if last is None:
                return
            thresh = last // MIN_RTT_DIVISOR
            if thresh < MIN_RTT_THRESH:
                thresh = MIN_RTT_THRESH
            elif thresh > MAX_RTT_THRESH:
                thresh = MAX_RTT_THRESH
            if cur >= last + thresh:
                # The RTT grew: a queue is building. Enter CSS (§4.2).
                self.css_baseline = cur
                self.phase = CSS
                self.css_rounds = 0
                self.exits += 1
        elif self.phase is CSS and self.css_baseline is not None and cur < self.css_baseline:
            # The increase was not sustained (jitter): resume slow start (§4.2).
            self.css_baseline = None
            self.phase = SLOW_START
            self.resumes += 1

    def increase(self, acked: int, mss: int) -> int:
        """Bytes by which cwnd grows for ``acked`` newly acknowledged bytes (§4.2):
        min(N, L·SMSS) in slow start, a CSS_GROWTH_DIVISOR-th of that in CSS."""
        lim = L_NON_PACED * mss
        inc = acked if acked < lim else lim
        if self.phase is CSS:
            inc += self._frac
            self._frac = inc % CSS_GROWTH_DIVISOR
            inc //= CSS_GROWTH_DIVISOR
        return inc

    def state(self) -> dict[str, object]:
        return {"hystart": self.phase, "hystart_exits": self.exits}
