"""SEGMENT ARRIVES (RFC 9293 §3.10.7): SYN_SENT (§3.10.7.3) and the other states
(§3.10.7.4), one method per step of the RFC, called in its order by ``input``."""

from __future__ import annotations

import errno

from ..storage import Assembler
from ..units import MS
from ..wire.bytes_like import BytesLike
from ..wire.tcp import ACK, FIN, NO_OPTIONS, PSH, RST, SYN, URG, TcpOptions
from .opening import Opening
from .seq import lt as seq_lt
from .seq import MASK, sub, wrap
from .states import (CLOSE_WAIT, CLOSED, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK,
                     LISTEN, RECEIVING, SYN_RECEIVED, SYN_SENT, TIME_WAIT, State)
from .tcb import syn_window

_SYN_FIN = SYN | FIN
_ACK_PSH = ACK | PSH


class SegmentArrives(Opening):
    __slots__ = ()

    def input(self, seq: int, ack: int, flags: int, wnd: int, opts: TcpOptions,
              payload: BytesLike, now: int, tsval: int | None = None,
              tsecr: int | None = None) -> None:
        """RFC 9293 §3.10.7.3 (SYN_SENT) and §3.10.7.4 (other states), step by step.
        ``tsval`` and ``tsecr`` are the segment's timestamps (the layer decodes the common
        options layout without ``opts``)."""
        self.segs_in += 1
        self.last_rx = now
        st = self.state
        if st is SYN_SENT:
            self._input_syn_sent(seq, ack, flags, wnd, opts, payload, now)
            return
        if tsval is None:
            tsval = opts.ts_val
            tsecr = opts.ts_ecr
        if tsval is not None and self.ts_ok and not flags & RST \
                and seq_lt(tsval, self.ts_recent):
            self._paws_reject(len(payload), flags, now)
            return
        if st is ESTABLISHED and flags | PSH == _ACK_PSH and opts is NO_OPTIONS \
                and self.cfg.header_prediction \
                and self._predicted(seq, ack, wnd, payload, now, tsval, tsecr):
            return
        rn = self.rcv_nxt
        d = sub(seq, rn)                 # SEG.SEQ - RCV.NXT
        rwnd = self.rcv_adv - rn
        if rwnd < 0:
            rwnd = 0
        if flags & RST:
            # Second (RST), made on the segment as it arrived, before any trimming.
            self._check_rst(d, rwnd, now)
            return
        # First: the sequence number (acceptability), then trimming to the window.
        seg = self._check_sequence(d, rwnd, flags, payload, now)
        if seg is None:
            return
        d, flags, payload, seq_in = seg
        plen = len(payload)
        s = rn + d                       # where the (trimmed) segment starts
        # Third (security) is gone from RFC 9293. Fourth: SYN.
        if flags & SYN:
            self._check_syn(now)
            return
        # Fifth: ACK.
        if not flags & ACK:
            self.counters.incr("tcp.in_no_ack")
            return
        if not self._check_ack(ack, wnd, opts, flags, s, seq_in, plen, tsval, tsecr, now):
            return
        st = self.state
        # Sixth: URG.
        if flags & URG:
            self._check_urg()
        # Seventh: segment text.
        if plen:
            if not self._process_text(d, s, payload, plen, now):
                return
        # Eighth: FIN.
        if flags & FIN:
            self._check_fin(st, s + plen, now)
        if self.layer.defer_output and not self.asm:
            self.want_output()     # answered once per batch, at the next poll
        else:
            # Out-of-order data is answered at once even in a batch: each segment above a
            # hole owes the sender its own duplicate ACK (RFC 5681 §4.2, §3.2).
            self.output(now)
            extra = self.ooo_acks
            if extra:
                self.ooo_acks = 0
                for _ in range(extra):
                    self.send_ack(now)

    def _predicted(self, seq: int, ack: int, wnd: int, payload: BytesLike, now: int,
                   tsval: int | None, tsecr: int | None) -> bool:
        """Header prediction (Van Jacobson's, as in BSD's tcp_input and Linux's
        tcp_rcv_established): nearly every segment is the next in-order data, an ACK of
        new data, or both (a request that acknowledges the last answer), with nothing
        unusual going on. For those the eight checks of
        RFC 9293 §3.10.7.4 reach a known outcome, which this makes directly: the same
        state changes, minus the work of finding out. False (nothing changed) sends the
        segment down the full path. ``TcpConfig.header_prediction = False`` switches it
        off; a test checks both give the same bytes on the wire."""
        rn = self.rcv_nxt
        if seq != rn & MASK or self.asm or self._sack_due or (tsval is None and self.ts_ok):
            return False
        una = self.snd_una
        da = sub(ack, una)
        a = una + da
        plen = len(payload)
        if da < 0 or a > self.snd_max:
            return False
        if da:
            # It acknowledges new data: only outside loss recovery and before our FIN.
            recovery = self.recovery
            if recovery.in_recovery or recovery.dupacks or self.fin_seq is not None:
                return False
        elif not plen:
            return False     # a duplicate ACK or a window probe's answer: the full path
        if plen and (plen > self.rcv_adv - rn or self.detached):
            return False     # beyond the window, or nobody will read it
        if tsval is not None and self.ts_ok and rn <= self.last_ack_sent:
            self.ts_recent = tsval           # RFC 7323 §4.3, as in _check_ack
        # The fifth check's outcome: new data acknowledged, and the window update, whose
        # rule (SND.WL1 < SEG.SEQ, or equal and SND.WL2 <= SEG.ACK) holds for a segment
        # at RCV.NXT acknowledging at least SND.UNA.
        if da:
            self._ack_new(a, da, now, tsecr)
        self.probes = 0
        swnd = wnd << self.snd_wscale
        if swnd != self.snd_wnd:
            self._send_window_changed(swnd)
        self.snd_wl1 = rn
        self.snd_wl2 = a
        if plen:
            self._rcv_in_order(payload, plen, now)      # the seventh check's outcome
        if self.layer.defer_output:
            self.want_output()
        else:
            self.output(now)
        return True

    def _paws_reject(self, plen: int, flags: int, now: int) -> None:
        """RFC 7323 §5.3 R1 (PAWS), checked first in ``input``: a timestamp older than
        TS.Recent marks an old duplicate from a previous incarnation of the sequence
        space; it is ACKed (at a limited rate) and dropped."""
        self.counters.incr("tcp.in_paws")
        if self._oow_ack_allowed(plen, flags, now, "paws"):
            self.send_ack(now)

    def _check_sequence(self, d: int, rwnd: int, flags: int, payload: BytesLike,
                        now: int) -> tuple[int, int, BytesLike, int] | None:
        """First check (RFC 9293 §3.10.7.4): is the segment acceptable? Returns it trimmed
        to the window as (SEG.SEQ - RCV.NXT, flags, text, SEG.SEQ as it arrived), or None
        when it was not acceptable (then it was ACKed, as the RFC asks, and dropped)."""
        rn = self.rcv_nxt
        plen = len(payload)
        seglen = plen
        if flags & _SYN_FIN:
            if flags & SYN:
                seglen += 1
            if flags & FIN:
                seglen += 1
        if d == -1 and flags & SYN and flags & ACK:
            # A repeated SYN,ACK: its SYN is old news, its ACK may not be. Simultaneous
            # open (RFC 9293 Figure 8) needs the ACK; a peer still in SYN_RECEIVED needs
            # our ACK again. So drop the SYN, keep the rest, answer.
            flags &= ~SYN
            d = 0
            seglen -= 1
            self.ack_now = True
        # The four cases of RFC 9293 §3.10.7.4.
        if seglen == 0:
            ok = d == 0 if rwnd == 0 else 0 <= d < rwnd
        elif rwnd == 0:
            # Not acceptable -- but RFC 9293 allows for ACKs and RSTs in a zero window:
            # a window probe at RCV.NXT has its ACK processed; its text is trimmed away.
            ok = d == 0
        else:
            ok = 0 <= d < rwnd or 0 <= d + seglen - 1 < rwnd
        if not ok:
            self._unacceptable(d, seglen, plen, flags, now)
            return None
        seq_in = rn + d                # SEG.SEQ as it arrived, for the TS.Recent rule
        if d < 0:
            if plen and self.dsack_ok:
                ds = seq_in + 1 if flags & SYN else seq_in
                if ds < rn:
                    self._dsack = (ds, rn)     # RFC 2883 §4: report the duplicate part
                    self._sack_due = True
                    self.counters.incr("tcp.out_dsack")
            # Trim what we already have from the front (SYN first, it comes first).
            if flags & SYN:
                flags &= ~SYN
                d += 1
            if d < 0:
                payload = payload[-d:]
                plen += d
            d = 0
        over = d + plen - rwnd
        if over > 0:
            # Trim what lies beyond the window; a FIN there goes too.
            payload = payload[:plen - over]
            flags &= ~FIN
            self.ack_now = True
            self.counters.incr("tcp.in_trimmed")
        return d, flags, payload, seq_in

    def _check_rst(self, d: int, rwnd: int, now: int) -> None:
        """Second check (RFC 9293 §3.10.7.4), with the first one for a segment with RST,
        made on SEG.SEQ as it arrived (``d`` = SEG.SEQ - RCV.NXT): RFC 5961 §3.2 resets
        only when SEG.SEQ == RCV.NXT exactly; a SEG.SEQ elsewhere in the window earns a
        challenge ACK; outside the window the RST is dropped. Data, SYN or FIN riding on
        the RST do not move SEG.SEQ: trimming them first would let a blind attacker hit
        any of a payload's worth of values below RCV.NXT instead of one."""
        in_window = d == 0 if rwnd == 0 else 0 <= d < rwnd
        if not in_window:
            self.counters.incr("tcp.in_rst_out_of_window")
            return
        if d != 0 and self.cfg.rst_challenge:
            self.counters.incr("tcp.in_rst_challenged")
            self.layer.challenge_ack(self, now)
            return
        self._on_rst(now)

    def _check_syn(self, now: int) -> None:
        """Fourth check (RFC 9293 §3.10.7.4): a SYN in the window of a synchronized
        connection earns a challenge ACK (RFC 5961 §4), never a reset of the connection;
        a passive half-open child goes back to the listener instead."""
        if self.state is SYN_RECEIVED and self.passive:
            self.counters.incr("tcp.attempt_fails")
            self._set_state(LISTEN, now)
            self._teardown()
            return
        self.counters.incr("tcp.in_syn_challenged")
        self.layer.challenge_ack(self, now)     # RFC 5961 §4.2

    def _check_ack(self, ack: int, wnd: int, opts: TcpOptions, flags: int, s: int,
                   seq_in: int, plen: int, tsval: int | None, tsecr: int | None,
                   now: int) -> bool:
        """Fifth check (RFC 9293 §3.10.7.4): the ACK field. Completes the handshake in
        SYN_RECEIVED, drops (with a challenge ACK, RFC 5961 §5.2) what acknowledges
        unsent or very old data, then updates TS.Recent, the SACK scoreboard, SND.UNA
        (or counts a duplicate ACK), the send window, and the states our FIN's ACK
        moves. False when the segment is done with (dropped, or the connection ended)."""
        una = self.snd_una
        da = sub(ack, una)               # SEG.ACK - SND.UNA
        a = una + da
        if self.state is SYN_RECEIVED:
            if 0 < da and a <= self.snd_max:
                self.snd_wnd = wnd << self.snd_wscale
                self.snd_wl1 = s
                self.snd_wl2 = a
                if self.snd_wnd > self.max_snd_wnd:
                    self.max_snd_wnd = self.snd_wnd
                self._established(now)
            else:
                # <SEQ=SEG.ACK><CTL=RST>
                self.layer.send_rst(self.lip, self.rip, self.lport, self.rport, ack, 0, RST, now)
                return False
        if a > self.snd_max:
            # It acknowledges something not yet sent: ACK and drop (§3.10.7.4 fifth;
            # RFC 5961 §5.2 makes that ACK a rate-limited challenge ACK).
            self.counters.incr("tcp.in_ack_unsent")
            if self._oow_ack_allowed(plen, flags, now, "ack_unsent"):
                if self.cfg.ack_check:
                    self.layer.challenge_ack(self, now)
                else:
                    self.send_ack(now)
            return False
        if da < 0 and self.cfg.ack_check and -da > self.max_snd_wnd:
            # RFC 5961 §5.2: SEG.ACK below SND.UNA - MAX.SND.WND is not acceptable: the
            # segment (and any data it carries -- a blind injection) is dropped and a
            # challenge ACK sent.
            self.counters.incr("tcp.in_ack_too_old")
            if self._oow_ack_allowed(plen, flags, now, "ack_too_old"):
                self.layer.challenge_ack(self, now)
            return False
        if tsval is not None and self.ts_ok and seq_in <= self.last_ack_sent:
            # RFC 7323 §4.3 / §5.3 R3: TS.Recent moves only now, after every
            # acceptability check including the ACK's, so a blind segment that guessed
            # RCV.NXT but not SND.UNA cannot push it into the future and make PAWS reject
            # the real peer. (PAWS above ensured TSval >= TS.Recent.)
            self.ts_recent = tsval
        swnd = wnd << self.snd_wscale
        sack_new = False
        blocks = opts.sack_blocks
        sb = self.recovery.sb
        if blocks and sb is not None and da >= 0:
            # RFC 6675 §4 Update(): record what the receiver holds above the ACK.
            sack_new, dsack = sb.update(blocks, a, self.snd_max)
            if dsack:
                self.counters.incr("tcp.in_dsack")
        if da > 0:
            self._ack_new(a, da, now, tsecr)
        elif da == 0 and plen == 0 and not flags & _SYN_FIN and swnd == self.snd_wnd \
                and self.snd_max > a and swnd:
            # RFC 5681 §2 duplicate ACK. (Not with a zero window: those answer our window
            # probes and say nothing about loss.)
            self.recovery.on_dupack(self, a, now)
        elif da == 0 and sack_new and self.snd_max > a:
            # RFC 6675 §2: an ACK carrying new SACK information also counts as duplicate.
            self.recovery.on_dupack(self, a, now)
        if da >= 0:
            self.probes = 0
            # Window update: SND.WND from a segment newer than the one that set it last
            # (SND.WL1 / SND.WL2, RFC 9293 §3.10.7.4 fifth).
            wl1 = self.snd_wl1
            if wl1 < s or (wl1 == s and self.snd_wl2 <= a):
                if swnd != self.snd_wnd:
                    self._send_window_changed(swnd)
                self.snd_wl1 = s
                self.snd_wl2 = a
        fin_seq = self.fin_seq
        if fin_seq is not None and self.snd_una > fin_seq:
            return self._our_fin_acked(now)
        return True

    def _send_window_changed(self, swnd: int) -> None:
        """The fifth check's window update brought a new SND.WND (RFC 9293 §3.10.7.4)."""
        old = self.snd_wnd
        self.snd_wnd = swnd
        if swnd > self.max_snd_wnd:
            self.max_snd_wnd = swnd
        if swnd > old:
            # The window opened: stop probing, send at once.
            self.t_persist = None
            self.persist_backoff = 0
            self.probes = 0
            self.notify()

    def _our_fin_acked(self, now: int) -> bool:
        """Our FIN is acknowledged (RFC 9293 §3.10.7.4 fifth, FIN_WAIT_1 / CLOSING /
        LAST_ACK). False when that ended the segment's processing."""
        st = self.state
        if st is FIN_WAIT_1:
            self._set_state(FIN_WAIT_2, now)
            self.t_rtx = None
            if self.detached and self.t_tw is None:
                self.t_tw = now + self.cfg.fin_wait2_timeout
        elif st is CLOSING:
            self._enter_time_wait(now)
            self.output(now)
            return False
        elif st is LAST_ACK:
            self._set_state(CLOSED, now)
            self._teardown()
            return False
        return True

    def _check_urg(self) -> None:
        """Sixth (RFC 9293 §3.10.7.4): URG. Urgent data is delivered inline, as ordinary
        data (RFC 6093 recommends that new applications not use it); it is counted."""
        self.counters.incr("tcp.in_urg")

    def _process_text(self, d: int, s: int, payload: BytesLike, plen: int, now: int) -> bool:
        """Seventh (RFC 9293 §3.10.7.4): the segment text, in order into the receive
        queue or out of order into the assembler. False when the connection was reset
        because nobody will read the data."""
        if self.state in RECEIVING:
            if self.detached:
                # Nobody will read it: tell the peer (RFC 1122 4.2.2.13, as Linux does).
                self.counters.incr("tcp.in_data_after_close")
                self.abort(now)
                return False
            if d == 0:
                self._rcv_in_order(payload, plen, now)
            else:
                self._rcv_out_of_order(s, payload, now)
        else:
            self.counters.incr("tcp.in_data_ignored")
        return True

    def _check_fin(self, st: State, fin_at: int, now: int) -> None:
        """Eighth (RFC 9293 §3.10.7.4): the FIN, at sequence number ``fin_at``. In order it
        ends the peer's stream now; ahead of a hole it waits (``ooo_fin``). ``st`` is the
        state the ACK check left (before the text was processed)."""
        if fin_at == self.rcv_nxt:
            self._fin_received(now)
        elif self.cfg.ooo_buffering and st in RECEIVING:
            self.ooo_fin = fin_at
            self.ack_now = True

    def _unacceptable(self, d: int, seglen: int, plen: int, flags: int, now: int) -> None:
        """RFC 9293 §3.10.7.4 first check failed: ACK and drop (RSTs never get here)."""
        if d + seglen <= 0:
            self.counters.incr("tcp.in_duplicate")     # old data we already have
            if plen and self.dsack_ok:
                # RFC 2883 §4: the first SACK block of the ACK reports the duplicate.
                ds = self.rcv_nxt + d + (1 if flags & SYN else 0)
                self._dsack = (ds, ds + plen)
                self._sack_due = True
                self.counters.incr("tcp.out_dsack")
        else:
            self.counters.incr("tcp.in_out_of_window")
        st = self.state
        if st is SYN_RECEIVED:
            if flags & SYN and d == -1:
                self._duplicate_syn(now)
            return
        if st is TIME_WAIT and flags & FIN:
            # RFC 9293 §3.10.7.4: a retransmitted FIN; ACK it and restart the 2·MSL timer.
            self.t_tw = now + 2 * self.cfg.msl if self.cfg.time_wait else now
        if self._oow_ack_allowed(plen, flags, now, "out_of_window"):
            self.send_ack(now)

    def _oow_ack_allowed(self, plen: int, flags: int, now: int, reason: str) -> bool:
        """May we ACK this unacceptable segment? RFC 5961 §7 asks for a (configurable)
        limit on such ACKs: two TCPs that both find the other's ACKs unacceptable would
        otherwise answer each other once per round trip for ever. As in Linux
        (tcp_oow_rate_limited), segments that carry data or a FIN are always answered --
        a peer retransmitting because our ACK was lost needs one each time -- and the
        others get at most one ACK per ``oow_ack_interval`` per connection."""
        if (plen or flags & FIN) and not flags & SYN:
            return True
        gap = self.cfg.oow_ack_interval
        last = self._oow_ack_time
        if gap and last is not None and now - last < gap:
            self.counters.incr("tcp.oow_ack_limited")
            self.record(now, "oow_ack_limited", reason=reason, seq=wrap(self.snd_nxt),
                        ack=wrap(self.rcv_nxt))
            return False
        self._oow_ack_time = now
        return True

    def _on_rst(self, now: int) -> None:
        """A RST in the window (RFC 9293 §3.10.7.4 second)."""
        st = self.state
        self.counters.incr("tcp.in_rsts")
        if st is SYN_RECEIVED:
            if self.passive:
                self.counters.incr("tcp.attempt_fails")
                self._set_state(LISTEN, now)   # back to the listener (which never left)
                self._teardown()
            else:
                self._fail(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), now)
        elif st is ESTABLISHED or st is FIN_WAIT_1 or st is FIN_WAIT_2 or st is CLOSE_WAIT:
            self.counters.incr("tcp.estab_resets")
            self._fail(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), now)
        else:   # CLOSING, LAST_ACK, TIME_WAIT
            self._set_state(CLOSED, now)
            self._teardown()

    def _duplicate_syn(self, now: int) -> None:
        """The peer's SYN again while we are in SYN_RECEIVED: maybe our SYN,ACK was lost,
        maybe the network (or an attacker) copied the SYN. Answer with the same SYN,ACK,
        but at most once per ``oow_ack_interval`` (30 copies must not draw 30 answers),
        and not as a retransmission: nothing of ours was found lost, so the initial
        window stays (RFC 5681 §3.1 lowers it only after a lost SYN or SYN,ACK)."""
        self.counters.incr("tcp.in_syn_duplicate")
        if self._oow_ack_allowed(0, SYN, now, "duplicate_syn"):
            self._send_syn(now, answer=True)

    def _ack_new(self, a: int, acked: int, now: int, tsecr: int | None = None) -> None:
        """SND.UNA < SEG.ACK <= SND.MAX: data (or our SYN/FIN) acknowledged."""
        flight = self.snd_max - self.snd_una
        if self.snd_una == self.iss:
            acked -= 1          # the SYN's sequence number is no data
        sb = self.sbase
        if a > sb:
            q = self.sndq
            nd = a - sb
            ql = len(q)
            if nd > ql:
                nd = ql
            if nd:
                q.consume(nd)
                self.sbase = sb + nd
                self.notify()   # room in the send buffer: writable
        self.snd_una = a
        if self.snd_nxt < a:
            self.snd_nxt = a
        self.retries = 0
        self.probes = 0
        self.ut_time = now           # progress, for the user timeout
        board = self.recovery.sb
        if board is not None and board.starts:
            board.advance(a)
        rtt = None
        rs = self.rtt_seq
        if rs is not None and a >= rs:
            # The timed segment (RFC 6298 §3, never a retransmitted one: Karn).
            rtt = now - self.rtt_time
            self.rtt_seq = None
        elif tsecr and self.ts_ok:
            # RFC 7323 §4.1 RTTM: the echoed TSval dates the segment that this ACK
            # answers -- retransmitted or not, so Karn's rule is not needed here. The
            # TS clock ticks in ms; the part of the current ms adds back some precision.
            age = wrap((now // MS + self.ts_offset) - tsecr)
            if age * MS <= 2 * self.cfg.rto_max:
                rtt = age * MS + now % MS
        if rtt is not None:
            est = self.rtt
            if self.ts_ok:
                # RFC 7323 Appendix G: with a sample on (nearly) every ACK, weigh each
                # by 1/ExpectedSamples, ExpectedSamples = ceil(FlightSize / (2 * SMSS)).
                est.sample(rtt, -(-flight // (2 * self.snd_mss)) or 1)
            else:
                est.sample(rtt)
            if self.log.enabled:
                self.record(now, "rtt", rtt_ms=rtt / MS, srtt_ms=(est.srtt or 0) / MS,
                            rto_ms=est.rto / MS, seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt))
        # RFC 6298 §5.2, §5.3: stop the timer when all is acknowledged, else restart it.
        if a >= self.snd_max:
            self.t_rtx = None
            self.t_ut = None
        elif self.cfg.retransmission:
            self.t_rtx = now + self.rtt.rto
        cc = self.cc
        recovery = self.recovery
        if recovery.in_recovery:
            recovery.on_ack_in_recovery(self, a, acked, now)
        else:
            old = cc.cwnd
            # (HyStart++ watches the RTT samples of the initial slow start, RFC 9406 §4.2)
            change = cc.on_ack_sample(a, self.snd_max, rtt)
            if change is not None and self.log.enabled:
                self.record(now, "hystart", **change, seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt))
            if self.cwnd_full or (old < cc.ssthresh and old < 2 * self.max_flight) \
                    or not self.cfg.cwnd_validation:
                idle = self.cwnd_idle_since
                if idle is not None:
                    # A curve in time (CUBIC's) resumes where it paused (RFC 9438 §5.8).
                    self.cwnd_idle_since = None
                    cc.on_growth_resumed(now - idle)
                cc.on_ack(acked, now, self.rtt.srtt, self.snd_max - a)
                if cc.cwnd != old and self.log.enabled:
                    self.log_cwnd(now, "ack")
            elif self.cwnd_idle_since is None:
                # cwnd is not used, so this ACK says nothing about a larger one: no growth
                # (see Output.send_data).
                self.cwnd_idle_since = now
        recovery.dupacks = 0
        recovery.limited = 0

    def _rcv_in_order(self, payload: BytesLike, plen: int, now: int) -> None:
        n = self.rcvq.append(payload)
        rn = self.rcv_nxt + n
        self.bytes_in += n
        asm = self.asm
        if asm:
            # This segment may fill a hole: deliver what now follows, ACK at once
            # (RFC 5681 §4.2, RFC 9293 §3.10.7.4 seventh).
            while True:
                chunk = asm.pop(rn)
                if chunk is None:
                    break
                k = self.rcvq.append(chunk)
                rn += k
                self.bytes_in += k
            self.rcv_nxt = rn
            self.ack_now = True
            if self._sack_due and not asm.nbytes and self._dsack is None:
                self._sack_due = False
            if self.ooo_fin is not None and self.ooo_fin == rn:
                self._fin_received(now)
        else:
            self.rcv_nxt = rn
            if self.cfg.delayed_ack:
                # RFC 1122 4.2.3.2 / RFC 5681 §4.2: ACK at least every second full-sized
                # segment, and within the delayed-ACK timeout. A segment larger than our
                # MSS (merged by receive offload, GRO) holds two or more: ACK it now.
                segs = self.delack_segs + (2 if n > self.our_mss else 1)
                if segs >= 2:
                    self.ack_now = True
                else:
                    self.delack_segs = segs
                    if self.t_delack is None:
                        self.t_delack = now + self.cfg.delack_ms * MS
            else:
                self.ack_now = True
        self.notify()

    def _rcv_out_of_order(self, s: int, payload: BytesLike, now: int) -> None:
        self.ack_now = True   # an immediate duplicate ACK (RFC 5681 §4.2)
        if not self.cfg.ooo_buffering:
            self.counters.incr("tcp.ofo_dropped")
            return
        asm = self.asm
        if asm is None:
            asm = self.asm = Assembler(self.rcv_cap, self.cfg.ranges_for(self.rcv_cap))
        if self.dsack_ok and asm.covering(s, s + len(payload)) is not None:
            # Already held: RFC 2883 §4 reports the duplicate as a D-SACK block.
            self._dsack = (s, s + len(payload))
            self._sack_due = True
            self.counters.incr("tcp.out_dsack")
            return
        if asm.insert(s, payload):
            if self.sack_ok:
                self._sack_due = True
            self.counters.incr("tcp.ofo_queued")
            # ... one per full-sized segment when SACK is off: a segment merged by receive
            # offload (GRO) holds several, and a sender that counts duplicate ACKs needs
            # three for fast retransmit (RFC 5681 §3.2). With SACK the blocks of one ACK
            # tell the sender how much arrived (RFC 6675 counts SACKed bytes), and copies
            # of it would only repeat that.
            full = self.our_mss - 12 if self.ts_ok else self.our_mss
            if not self.sack_ok and len(payload) > full > 0:
                self.ooo_acks = (len(payload) - 1) // full
        else:
            self.counters.incr("tcp.ofo_dropped")

    def _fin_received(self, now: int) -> None:
        self.rcv_nxt += 1
        self.fin_rcvd = True
        self.ooo_fin = None
        st = self.state
        if st is ESTABLISHED and self.cfg.delayed_ack and not self.ack_now:
            # The peer closed first: our application usually answers at once with its own
            # FIN (or a last response), and that segment carries the ACK -- a close in three
            # segments, not four, as Linux does (tcp_fin() enters its delayed-ACK "pingpong"
            # mode). A delayed ACK is allowed (RFC 1122 4.2.3.2); the timer still bounds
            # it, and a retransmitted FIN is answered at once (first check, unacceptable).
            if not self.delack_segs:
                self.delack_segs = 1
            if self.t_delack is None:
                self.t_delack = now + self.cfg.delack_ms * MS
        else:
            self.ack_now = True      # a FIN is acknowledged at once
        if st is ESTABLISHED or st is SYN_RECEIVED:
            self._set_state(CLOSE_WAIT, now)
        elif st is FIN_WAIT_1:
            self._set_state(CLOSING, now)
        elif st is FIN_WAIT_2:
            self.t_tw = None
            self._enter_time_wait(now)
        elif st is TIME_WAIT:
            self.t_tw = now + 2 * self.cfg.msl if self.cfg.time_wait else now
        self.notify()

    def _input_syn_sent(self, seq: int, ack: int, flags: int, wnd: int, opts: TcpOptions,
                        payload: BytesLike, now: int) -> None:
        """RFC 9293 §3.10.7.3."""
        ack_ok = False
        if flags & ACK:
            da = wrap(ack - self.iss)   # unsigned: 0 < da <= SND.MAX - ISS is acceptable
            if da == 0 or da > self.snd_max - self.iss:
                # An ACK for something we never sent: <SEQ=SEG.ACK><CTL=RST>
                self.counters.incr("tcp.in_bad_ack")
                if not flags & RST:
                    self.layer.send_rst(self.lip, self.rip, self.lport, self.rport, ack, 0, RST, now)
                return
            ack_ok = True
        if flags & RST:
            if ack_ok:
                self.counters.incr("tcp.attempt_fails")
                self._fail(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), now)
            return
        if not flags & SYN:
            return
        self.irs = seq
        self.rcv_nxt = seq + 1
        self.last_ack_sent = self.rcv_nxt
        self.rcv_adv = self.rcv_nxt + syn_window(self.rcv_cap)
        self._take_syn_options(opts)
        if ack_ok:
            a = self.iss + da
            self.snd_una = a
            if self.snd_nxt < a:
                self.snd_nxt = a
            if self.rtt_seq is not None and a >= self.rtt_seq:
                self.rtt.sample(now - self.rtt_time)
                self.rtt_seq = None
            self.t_rtx = None
            self.snd_wnd = wnd          # unscaled in a SYN (RFC 7323 §2.2)
            self.max_snd_wnd = wnd
            self.snd_wl1 = self.rcv_nxt - 1
            self.snd_wl2 = a
            self._established(now)
            self.ack_now = True
            if len(payload) or flags & FIN:
                # Data in the SYN,ACK (rare): process it as text now.
                if len(payload):
                    self._rcv_in_order(payload[:max(0, self.rcv_adv - self.rcv_nxt)], len(payload), now)
                if flags & FIN:
                    self._fin_received(now)
            self.output(now)
        else:
            # Simultaneous open (RFC 9293 §3.5, Figure 8): SYN_SENT -> SYN_RECEIVED.
            self.snd_wnd = wnd
            self.max_snd_wnd = wnd
            self.snd_wl1 = seq
            self._set_state(SYN_RECEIVED, now)
            self.t_rtx = None
            self.snd_max = self.iss      # send the SYN,ACK as "our SYN" again
            self.snd_nxt = self.iss
            saved = self.syn_rexmits
            self._send_syn(now)
            self.syn_rexmits = saved
