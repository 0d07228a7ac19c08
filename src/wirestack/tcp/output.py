"""Sending (RFC 9293 §3.10.7, §3.8.6, §3.7.4): segments leave here -- data within the
peer's window and cwnd (Nagle, sender SWS avoidance), the SYN, retransmissions, the
window we advertise (receiver SWS avoidance, RFC 7323 scaling) and the SACK option."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ..units import MS
from ..wire.bytes_like import BytesLike
from ..wire.tcp import ACK, FIN, PSH, RST, SYN, encode_options
from .seq import wrap
from .states import CLOSED, RECEIVING, SENDING, SYN_RECEIVED, SYN_SENT
from .tcb import Tcb, syn_window

if TYPE_CHECKING:
    from .connection import Connection


class Output(Tcb):
    __slots__ = ()

    def want_output(self) -> None:
        """Run ``output`` at the layer's next poll."""
        self.layer.want_output(cast("Connection", self))   # (self is a whole Connection)

    def after_read(self) -> None:
        """The application consumed received data: if the window would open by enough to
        matter (RFC 9293 §3.8.6.2.2) and the peer may be held back by the old one, send a
        window update now rather than with the next ACK."""
        if self.state not in RECEIVING:
            return
        cur = self.rcv_adv - self.rcv_nxt
        space = self.rcv_cap - len(self.rcvq)
        if space - cur >= self._sws and space >= 2 * cur:
            self.ack_now = True
            self.want_output()

    def _rcv_window(self) -> int:
        """The window field for an outgoing segment; records the right edge promised."""
        rn = self.rcv_nxt
        cur = self.rcv_adv - rn
        if cur < 0:
            cur = 0
        space = self.rcv_cap - len(self.rcvq)
        # Receiver SWS avoidance (RFC 9293 §3.8.6.2.2, RFC 1122 4.2.3.3): move the right
        # edge only when it can advance by min(RCV.BUFF / 2, Eff.snd.MSS) or more.
        if space - cur >= self._sws:
            cur = space
        ws = self.rcv_wscale
        if cur > space:
            # The edge promised earlier lies beyond the free space (earlier rounding up):
            # keep accepting up to it (rcv_adv stays) but advertise it rounded down, or
            # every ACK would push the edge up to 2**ws - 1 bytes further and the promises
            # would creep past the buffer (RFC 7323 §2.4 lets the edge move left by less
            # than 2**ws bytes for this rounding).
            w = cur >> ws
        else:
            w = (cur + (1 << ws) - 1) >> ws    # round up: never shrink the edge (RFC 7323 §2.4)
        if w > 0xFFFF:
            w = 0xFFFF
        edge = rn + (w << ws)
        if edge > self.rcv_adv:
            self.rcv_adv = edge
        return w

    def _emit(self, seq: int, flags: int, payload: BytesLike, now: int,
              opts: bytes | None = None) -> None:
        """Build one segment (RFC 9293 §3.1) with its checksum and hand it to IP."""
        if flags & ACK:
            ack = self.rcv_nxt
            self.last_ack_sent = ack
            if flags & SYN:
                # RFC 7323 §2.2: the window of a SYN segment is never scaled.
                w = syn_window(self.rcv_cap)
                if self.rcv_nxt + w > self.rcv_adv:
                    self.rcv_adv = self.rcv_nxt + w
                win = w
            else:
                win = self._rcv_window()
            # Any ACK we send meets the delayed-ACK obligation (RFC 1122 4.2.3.2).
            self.ack_now = False
            self.delack_segs = 0
            self.t_delack = None
        else:
            ack = 0
            if flags & SYN:
                win = syn_window(self.rcv_cap)
            elif flags & RST:
                win = 0
            else:
                win = self._rcv_window()
        if self._sack_due and opts is None and flags & ACK:
            opts = self._sack_option(len(payload), now)
        if opts is None:
            if self.ts_ok and not flags & RST:
                if len(payload) > self.snd_mss and self.layer.gso_max:
                    seg = self.tpl.build_ts_tso(seq, ack, flags, win, now // MS + self.ts_offset,
                                                self.ts_recent, payload)
                else:
                    seg = self.tpl.build_ts(seq, ack, flags, win, now // MS + self.ts_offset,
                                            self.ts_recent, payload)
            else:
                seg = self.tpl.build(seq, ack, flags, win, payload)
        else:
            seg = self.tpl.build(seq, ack, flags, win, payload, opts)
        self.segs_out += 1
        self.counters["tcp.out_segs"] += 1   # netstat's "segments sent out"
        self.layer.ip_output(self.lip, self.rip, 6, seg, now)

    def _ack_seq(self) -> int:
        """The sequence number of a pure ACK: the next new byte, SND.MAX -- not SND.NXT,
        which an RTO rewinds to SND.UNA (go-back-N) although the peer may hold more; an
        ACK below the peer's RCV.NXT is an "old duplicate" it drops unread, and if the
        peer rewound too, each side drops the other's ACKs and they ping-pong forever
        (BSD's tcp_output makes the same choice). And not beyond the right edge of the
        peer's window (it shrank, typically to zero, while our data was in flight): the
        peer would drop that too (RFC 9293 §3.10.7.4); Linux's tcp_acceptable_seq."""
        edge = self.snd_una + self.snd_wnd
        top = self.snd_max
        return top if top <= edge else edge

    def send_ack(self, now: int) -> None:
        """A pure ACK now: <SEQ=(see _ack_seq)><ACK=RCV.NXT><CTL=ACK>."""
        self._emit(self._ack_seq(), ACK, b"", now)

    def send_challenge_ack(self, now: int) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, the challenge ACK of RFC 5961 §3.2."""
        self._emit(self.snd_nxt, ACK, b"", now)

    def _sack_option(self, n: int, now: int) -> bytes | None:
        """The options of an ACK that reports SACK blocks (RFC 2018 §4), with the
        timestamp when in use: at most 3 blocks beside a timestamp, 4 without, and fewer
        when the segment's data leaves less room within the MSS. A pending D-SACK block
        (RFC 2883 §4) goes first, followed by the block that contains it, if any; then the
        most recently changed blocks, the one holding the latest segment first."""
        ts_ok = self.ts_ok
        maxb = 3 if ts_ok else 4
        room = (self.snd_mss - n - 4) >> 3
        if room < maxb:
            if room <= 0:
                return None         # a full-sized segment: the blocks ride the next ACK
            maxb = room
        asm = self.asm
        blocks = []
        skip = None
        d = self._dsack
        if d is not None:
            self._dsack = None
            if asm is None or not asm.nbytes:
                self._sack_due = False
            blocks.append(d)
            if asm is not None:
                c = asm.covering(d[0], d[1])
                if c is not None:
                    blocks.append(c)
                    skip = c[0]
        if asm is not None and len(blocks) < maxb:
            blocks += asm.sack_blocks(maxb - len(blocks), skip)
        if not blocks:
            return None
        ts = (now // MS + self.ts_offset, self.ts_recent) if ts_ok else None   # (encoded mod 2**32)
        return encode_options(ts=ts, sack_blocks=[(wrap(l), wrap(r)) for l, r in blocks[:maxb]])

    def _sack_room(self) -> int:
        """Bytes the SACK option takes on the next segment (0 when none is due)."""
        asm = self.asm
        nb = (1 if self._dsack is not None else 0) + (len(asm) if asm is not None else 0)
        if not nb:
            return 0
        maxb = 3 if self.ts_ok else 4
        return 4 + 8 * (nb if nb < maxb else maxb)

    def _send_syn(self, now: int, answer: bool = False) -> None:
        """SYN (SYN_SENT) or SYN,ACK (SYN_RECEIVED), first or again (same ISS). With
        ``answer`` the SYN,ACK replies to a duplicate SYN and is not a retransmission."""
        cfg = self.cfg
        st = self.state
        if st is SYN_SENT:
            flags = SYN
            wscale = self.rcv_wscale if cfg.window_scaling else None
            # (encode_options keeps the low 32 bits of TSval, RFC 7323 §5.4)
            ts = (now // MS + self.ts_offset, 0) if cfg.timestamps else None
            sack = cfg.sack
        else:
            flags = SYN | ACK
            # A SYN,ACK carries an option only if the peer's SYN offered it (RFC 7323 §2.2, §3.2).
            wscale = self.rcv_wscale if self.ws_ok else None
            ts = (now // MS + self.ts_offset, self.ts_recent) if self.ts_ok else None
            sack = self.sack_ok
        opts = encode_options(mss=self.our_mss, wscale=wscale, ts=ts, sack_permitted=sack)
        self._emit(self.iss, flags, b"", now, opts)
        self._syn_sent(now, answer)

    def _syn_sent(self, now: int, answer: bool = False) -> None:
        """Our SYN or SYN,ACK left: the sequence space it takes, its RTT timing (or, again,
        Karn's rule), the retransmission timer."""
        cfg = self.cfg
        if self.snd_max == self.iss:
            self.snd_nxt = self.snd_max = self.iss + 1
            self.rtt_seq = self.iss + 1
            self.rtt_time = now
        elif answer:
            if self.cfg.karn:
                self.rtt_seq = None   # the ACK may answer either copy: no RTT sample
        else:
            self.syn_rexmits += 1
            self.retransmits += 1
            self.counters.incr("tcp.retrans_segs")
            if self.cfg.karn:
                self.rtt_seq = None   # Karn: no sample from a retransmitted SYN
            if self.log.enabled:
                self.record(now, "retransmit", seq=wrap(self.iss), ack=wrap(self.rcv_nxt),
                            len=0, reason="rto",
                            flags="S" if self.state is SYN_SENT else "S.")
        if self.t_rtx is None and cfg.retransmission:
            self.t_rtx = now + self.rtt.rto

    def output(self, now: int) -> None:
        """Send what is allowed now: the SYN, new data, our FIN, a pending ACK."""
        st = self.state
        if st is SYN_SENT:
            if self.snd_max == self.iss:
                self._send_syn(now)
            return
        sent = False
        if st in SENDING:
            if self.recovery.sack_rec:
                sent = self.recovery.sack_output(self, now)
            elif self.sbase + len(self.sndq) > self.snd_nxt or self.fin_queued:
                sent = self.send_data(now, False)
        if self.ack_now and not sent and st is not SYN_RECEIVED and st is not CLOSED:
            self.send_ack(now)

    def send_data(self, now: int, force: bool, budget: int | None = None) -> bool:
        """Segmentize queued data within min(peer window, cwnd) (RFC 9293 §3.8.6, RFC 5681
        §3.1), applying Nagle (§3.7.4) and sender SWS avoidance (§3.8.6.2.1). ``force``
        lets one segment through those two rules (the persist/override timer, (d)).
        ``budget`` replaces the cwnd rule during SACK recovery: cwnd - pipe bytes may
        go, a segment only while at least one SMSS of it is left (RFC 6675 §5 (C))."""
        mss = self.snd_mss
        if self._sack_due:
            # SACK blocks ride on our data too: keep header + data within the MSS.
            mss -= self._sack_room()
            if mss < 8:
                mss = 8
        sndq = self.sndq
        sent = False
        cc = self.cc
        recovery = self.recovery
        if self.snd_una == self.snd_max:
            # Nothing in flight: data leaves after a pause (or for the first time).
            idle = now - self.last_send
            if idle > self.rtt.rto and self.cfg.slow_start_after_idle \
                    and cc.on_restart_after_idle():
                # RFC 5681 §4.1: nothing sent for longer than the RTO, so the ACK clock has
                # stopped and what cwnd learned of the path may be stale: start again from
                # min(IW, cwnd) rather than send a whole old window as one burst.
                self.counters.incr("tcp.idle_restarts")
                self.log_cwnd(now, "idle")
            elif self.cwnd_idle_since is None and self.cfg.cwnd_validation:
                # A shorter pause after a window that was used: no ACK was refused growth
                # to count it (see _ack_new), yet it is not part of CUBIC's t either (RFC
                # 9438 §5.8 names idle periods); the curve moves on by the time since the
                # last data left.
                cc.on_growth_resumed(idle)
        # Super-segments only when the device's cut (MTU - IP - TCP header with the
        # timestamp option) equals our MSS, i.e. the peer accepts full-size segments.
        gso = self.layer.gso_max
        if gso and (budget is not None or not self.ts_ok or self._sack_due
                    or mss + 52 != self.layer.mtu_for(self.rip)):
            gso = 0
        while True:
            nxt = self.snd_nxt
            data_end = self.sbase + len(sndq)
            avail = data_end - nxt
            wnd = self.snd_wnd
            if budget is None:
                cwnd = cc.cwnd + recovery.limited
                if cwnd < wnd:
                    wnd = cwnd
                usable = self.snd_una + wnd - nxt
            else:
                if budget < self.snd_mss:
                    break
                usable = self.snd_una + wnd - nxt
                if usable > budget:
                    usable = budget
            if nxt < self.snd_max and recovery.sb:
                # Going back after a timeout: what the receiver SACKed is skipped (the
                # scoreboard survives a first RTO, see _on_rto).
                e = recovery.sb.sacked_end(nxt)
                if e is not None:
                    self.snd_nxt = e
                    continue
                ns = recovery.sb.next_start_after(nxt)
                if ns is not None and ns - nxt < avail:
                    avail = ns - nxt
            if avail > 0:
                n = avail if avail < mss else mss
                if n > usable:
                    n = usable
                    if n <= 0:
                        self._arm_persist(now)
                        break
                    if n < mss and n < (self.max_snd_wnd >> 1) and not force:
                        # Sender SWS avoidance: wait for a worthwhile window (or for the
                        # override timer when nothing is in flight to bring an ACK).
                        self._arm_persist(now)
                        break
                elif n < mss and not force and not self.nodelay and nxt > self.snd_una \
                        and not (self.fin_queued and self.state is not SYN_RECEIVED):
                    # Nagle (RFC 896, RFC 9293 §3.7.4): one small segment in flight at a
                    # time. A queued FIN flushes it, as there is nothing left to coalesce.
                    break
                if n == mss and gso and nxt >= self.snd_max:
                    # TSO: new data in one super-segment, a whole number of MSS-sized
                    # pieces within the window (the device cuts it up, see layer.gso_max).
                    k = min(avail, usable, gso) // mss
                    if k > 1:
                        n = k * mss
                end = nxt + n
                flags = ACK | PSH if n == avail else ACK
                if end == data_end and self.fin_queued and self.state is not SYN_RECEIVED:
                    flags |= FIN
                    end += 1
                b = nxt - self.sbase
                self._emit(nxt, flags, sndq.peek(b, n), now)
            elif avail == 0 and self.fin_queued and self.state is not SYN_RECEIVED:
                # A FIN on its own (it needs no window: RFC 9293 §3.10.4 queues it after data).
                n = 0
                end = nxt + 1
                flags = ACK | FIN
                self._emit(nxt, flags, b"", now)
            else:
                break
            sent = True
            force = False
            if nxt < self.snd_max:
                self._note_retransmit(nxt, n, flags, now)
            elif self.rtt_seq is None:
                self.rtt_seq = end if end > nxt else nxt + 1
                self.rtt_time = now
            self.bytes_out += n
            self.snd_nxt = end
            if end > self.snd_max:
                self.snd_max = end
            if budget is not None:
                budget -= end - nxt
            if self.t_rtx is None:
                # Nothing was outstanding (or retransmission is off).
                if self.cfg.retransmission:
                    self.t_rtx = now + self.rtt.rto
                    self.t_persist = None
                if self.user_timeout is not None and self.t_ut is None:
                    # Data is outstanding from now on: the user timeout runs (RFC 5482 §3).
                    self.ut_time = now
                    self.t_ut = now + self.user_timeout
            if flags & FIN:
                break
        if sent:
            self.last_send = now
        if budget is None:
            # Is cwnd used? (RFC 9438 §5.8; the same test as Linux's tcp_is_cwnd_limited):
            # an ACK may grow cwnd only if, in the window of data it acknowledges, a send
            # left no room for another full segment under cwnd -- or, in slow start, cwnd
            # is below twice the most that was in flight. Otherwise the application or
            # the peer's window held the sender back, and cwnd would grow without the
            # path ever carrying it (a request/response exchange: by a few bytes per round
            # trip, for ever), then let out a burst of that size at once.
            flight = self.snd_nxt - self.snd_una
            full = flight + self.snd_mss > cc.cwnd
            if full or self.snd_una >= self.use_end or (flight > self.max_flight
                                                        and not self.cwnd_full):
                self.cwnd_full = full
                self.max_flight = flight
                self.use_end = self.snd_nxt
        return sent

    def _note_retransmit(self, seq: int, n: int, flags: int, now: int) -> None:
        self.retransmits += 1
        self.counters.incr("tcp.retrans_segs")
        if self.cfg.karn and self.rtt_seq is not None and seq < self.rtt_seq:
            self.rtt_seq = None   # Karn's algorithm: the timed segment was sent twice
        if self.log.enabled:
            self.record(now, "retransmit", seq=wrap(seq), ack=wrap(self.rcv_nxt), len=n,
                        reason=self.rtx_reason, fin=bool(flags & FIN))

    def retransmit_first(self, now: int) -> None:
        """Send the segment at SND.UNA again, whatever the window (RFC 5681 §3.2 step 2
        fast retransmit; RFC 6298 §5.4 on timeout; RFC 6582 partial ACK)."""
        una = self.snd_una
        sb = self.recovery.sb
        self.retransmit_range(una, now, sb.next_start_after(una) if sb else None)

    def retransmit_range(self, start: int, now: int, limit: int | None = None) -> int:
        """Send up to one SMSS of old data from ``start`` again (not past ``limit``, the
        start of SACKed data). Returns the sequence number after what was sent."""
        if not self.cfg.retransmission:
            return start        # the learning switch: lost data is never sent again
        data_end = self.sbase + len(self.sndq)
        n = data_end - start
        if n > self.snd_mss:
            n = self.snd_mss
        if limit is not None and start + n > limit:
            n = limit - start
        if n < 0:
            n = 0
        end = start + n
        flags = ACK
        if self.fin_seq is not None and end == self.fin_seq and self.snd_max > self.fin_seq:
            flags |= FIN
            end += 1
        if end == start:
            return start
        payload = self.sndq.peek(start - self.sbase, n) if n else b""
        self._emit(start, flags, payload, now)
        self._note_retransmit(start, n, flags, now)
        self.last_send = now         # data sent, for RFC 5681 §4.1's idle time
        if self.snd_nxt < end:
            self.snd_nxt = end
        if end > self.snd_max:
            self.snd_max = end
        return end

    def _arm_persist(self, now: int) -> None:
        # Only when nothing is in flight: then no ACK will come to reopen the window, so
        # we must probe (RFC 9293 §3.8.6.1, RFC 1122 4.2.2.17).
        if self.t_persist is None and self.t_rtx is None and self.snd_nxt == self.snd_una:
            iv = self.rtt.rto << self.persist_backoff
            self.t_persist = now + (iv if iv < self.cfg.rto_max else self.cfg.rto_max)
