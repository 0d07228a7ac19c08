"""The timers of a connection (RFC 9293 §3.8, §3.10.8): retransmission (RFC 6298),
persist (zero-window probes, §3.8.6.1), delayed ACK (RFC 1122 4.2.3.2), keep-alive
(§3.8.4), user timeout (§3.8.3, RFC 5482) and TIME_WAIT / FIN_WAIT_2 (§3.6.1)."""

from __future__ import annotations

import errno

from ..wire.tcp import ACK
from .seq import wrap
from .output import Output
from .states import (CLOSE_WAIT, CLOSED, ESTABLISHED, FIN_WAIT_2, SENDING, SYN_RECEIVED, SYN_SENT,
                     TIME_WAIT)

_KEEPALIVE_STATES = frozenset({ESTABLISHED, CLOSE_WAIT})


class Timers(Output):
    __slots__ = ()

    def deadline(self) -> int | None:
        d = self.t_rtx
        for t in (self.t_persist, self.t_delack, self.t_tw, self.t_ka, self.t_ut):
            if t is not None and (d is None or t < d):
                d = t
        return d

    def on_timer(self, now: int) -> None:
        t = self.t_rtx
        if t is not None and t <= now:
            self._on_rto(now)
            if self.state is CLOSED:
                return
        t = self.t_persist
        if t is not None and t <= now:
            self._on_persist(now)
        t = self.t_delack
        if t is not None and t <= now:
            self.t_delack = None
            if self.delack_segs or self.ack_now:
                self.counters.incr("tcp.delayed_acks")
                self.send_ack(now)
        t = self.t_tw
        if t is not None and t <= now:
            self.t_tw = None
            st = self.state
            if st is TIME_WAIT or st is FIN_WAIT_2:
                self._set_state(CLOSED, now)
                self._teardown()
                return
        t = self.t_ut
        if t is not None and t <= now:
            self._on_user_timeout(now)
            if self.state is CLOSED:
                return
        t = self.t_ka
        if t is not None and t <= now:
            self._on_keepalive(now)

    def _on_rto(self, now: int) -> None:
        """RFC 6298 §5.4-5.6: retransmit the earliest unacknowledged segment, back off the
        timer, restart it. RFC 5681 §3.1: ssthresh from FlightSize, cwnd = 1 SMSS."""
        self.t_rtx = None
        st = self.state
        syn = st is SYN_SENT or st is SYN_RECEIVED
        if not syn and self.snd_una >= self.snd_max:
            return
        if syn:
            limit = self.cfg.syn_retries
        elif self.user_timeout is not None:
            limit = 1 << 30      # RFC 5482: the user timeout, not a retry count, decides
        else:
            limit = self.cfg.max_retries
        if self.retries >= limit:
            if st is SYN_RECEIVED and self.passive:
                # A half-open child that never completed: drop it quietly.
                self.counters.incr("tcp.attempt_fails")
                self._set_state(CLOSED, now)
                self._teardown()
                return
            self.counters.incr("tcp.timeouts")
            msg = "Connection timed out"
            if self.soft_error is not None:
                msg += f" (last ICMP error: {self.soft_error.strerror})"
            self._fail(TimeoutError(errno.ETIMEDOUT, msg), now)
            return
        self.retries += 1
        self.rtt.on_timeout()
        self.counters.incr("tcp.rto_timeouts")
        if self.log.enabled:
            self.record(now, "rto", seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt),
                        rto=self.rtt.rto, backoff=self.rtt.backoff, retries=self.retries)
        if syn:
            self._send_syn(now)
        else:
            flight = self.snd_max - self.snd_una
            self.cc.on_rto(flight, now)
            self.log_cwnd(now, "rto")
            self.recovery.on_rto(self, now)
            if self.cfg.karn:
                self.rtt_seq = None
            self.snd_nxt = self.snd_una          # go back: resend from the first hole
            self.rtx_reason = "rto"
            self.retransmit_first(now)
        if self.cfg.retransmission:
            self.t_rtx = now + self.rtt.rto

    def _on_persist(self, now: int) -> None:
        """Zero-window probe or SWS override (RFC 9293 §3.8.6.1, §3.8.6.2.1 (d))."""
        self.t_persist = None
        if self.state not in SENDING:
            return
        nxt = self.snd_nxt
        avail = self.sbase + len(self.sndq) - nxt
        if avail <= 0 or nxt != self.snd_una:
            return
        wnd = self.snd_wnd if self.snd_wnd < self.cc.cwnd else self.cc.cwnd
        if wnd > 0:
            self.rtx_reason = "persist"
            self.send_data(now, True)
        else:
            # Probe with one byte of new data beyond the zero window; SND.NXT stays, the
            # byte is simply sent again (or for real) once the window opens.
            self.counters.incr("tcp.persist_probes")
            if self.log.enabled:
                self.record(now, "persist_probe", seq=wrap(nxt), ack=wrap(self.rcv_nxt),
                            backoff=self.persist_backoff)
            self._emit(nxt, ACK, self.sndq.peek(nxt - self.sbase, 1), now)
            if nxt + 1 > self.snd_max:
                self.snd_max = nxt + 1
            self.probes += 1
            # RFC 1122 4.2.2.17: probe for as long as the receiver answers (any ACK resets
            # the count); give up only when probes go unanswered like retransmissions.
            if self.probes > self.cfg.max_retries:
                self._fail(TimeoutError(errno.ETIMEDOUT, "Connection timed out (zero window)"), now)
                return
        self.persist_backoff += 1
        iv = self.rtt.rto << self.persist_backoff
        self.t_persist = now + (iv if iv < self.cfg.rto_max else self.cfg.rto_max)

    def arm_keepalive(self, now: int) -> None:
        """(Re)start the keep-alive timer, or stop it when the switch is off."""
        if self.cfg.keepalive and self.state in _KEEPALIVE_STATES:
            self.ka_probes = 0
            self.t_ka = max(now, self.last_rx) + self.cfg.keepalive_idle
        else:
            self.t_ka = None

    def _on_keepalive(self, now: int) -> None:
        """RFC 9293 §3.8.4 / RFC 1122 4.2.3.6: after ``keepalive_idle`` with nothing
        received, send a probe <SEQ=SND.UNA-1><CTL=ACK> -- outside the peer's window, so a
        live peer must answer with an ACK -- every ``keepalive_interval``; after
        ``keepalive_probes`` unanswered ones the connection is dead (TimeoutError).
        Lazy: arriving segments only update ``last_rx``; the timer looks at it here."""
        self.t_ka = None
        cfg = self.cfg
        if not cfg.keepalive or self.state not in _KEEPALIVE_STATES:
            return
        if self.ka_probes and self.last_rx >= self.ka_sent:
            self.ka_probes = 0                   # the peer answered
        if not self.ka_probes:
            idle_end = self.last_rx + cfg.keepalive_idle
            if now < idle_end:
                self.t_ka = idle_end
                return
            if self.snd_max > self.snd_una or self.sbase + len(self.sndq) > self.snd_nxt:
                # Not idle: data is in flight or queued, the RTO/persist timers watch it.
                self.t_ka = now + cfg.keepalive_idle
                return
        elif self.ka_probes >= cfg.keepalive_probes:
            self.counters.incr("tcp.keepalive_timeouts")
            self._fail(TimeoutError(errno.ETIMEDOUT, "Connection timed out (keep-alive)"), now)
            return
        self.ka_probes += 1
        self.ka_sent = now
        self.counters.incr("tcp.keepalive_probes")
        if self.log.enabled:
            self.record(now, "keepalive", seq=wrap(self.snd_una - 1), ack=wrap(self.rcv_nxt),
                        probe=self.ka_probes)
        self._emit(self.snd_una - 1, ACK, b"", now)
        self.t_ka = now + cfg.keepalive_interval

    def _on_user_timeout(self, now: int) -> None:
        """RFC 9293 §3.8.3 / RFC 5482 §3: outstanding data unacknowledged for longer than
        the user timeout ends the connection. ``ut_time`` is the last progress (an ACK
        of new data, or the moment data became outstanding)."""
        self.t_ut = None
        ut = self.user_timeout
        if ut is None or (self.snd_max <= self.snd_una and self.t_persist is None):
            return
        deadline = self.ut_time + ut
        if now >= deadline:
            self.counters.incr("tcp.user_timeouts")
            self._fail(TimeoutError(errno.ETIMEDOUT, "Connection timed out (user timeout)"), now)
        else:
            self.t_ut = deadline

    def _enter_time_wait(self, now: int) -> None:
        self._set_state(TIME_WAIT, now)
        self.t_rtx = self.t_persist = None
        self.sndq.clear()
        self.asm = None
        self._sack_due = False
        # RFC 9293 §3.6.1: wait 2·MSL so that old duplicates die out and a lost final
        # ACK can be repeated. With the learning switch off, leave at the next poll.
        self.t_tw = now + 2 * self.cfg.msl if self.cfg.time_wait else now
