"""One TCP connection: the transmission control block (TCB) and everything that happens
to it, organised like RFC 9293 §3.10 — segment arrival (input), sending (output), and the
timers (RTO, persist, delayed ACK, TIME_WAIT).

Sequence numbers inside the TCB are *unwrapped* Python ints: every 32-bit number that
arrives is mapped to the int nearest to a reference (RCV.NXT for SEG.SEQ, SND.UNA for
SEG.ACK), so comparisons are plain ``<`` instead of modular arithmetic, and only the wire
sees the 32-bit value (``seq.wrap``). Valid segments are always within 2**31 of the
reference, so the mapping is exact for them (RFC 9293 §3.4; the arithmetic is ``seq.py``).
"""

from __future__ import annotations

import errno

from ..storage import Assembler, ByteFifo
from ..units import MS
from ..wire.tcp import ACK, FIN, PSH, RST, SYN, URG, SegmentTemplate, encode_options
from . import congestion
from .rtt import RttEstimator
from .recovery import LossRecovery
from .sack import Scoreboard
from .seq import lt as seq_lt
from .seq import sub, wrap
from .states import (CLOSE_WAIT, CLOSED, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK,
                     LISTEN, RECEIVING, SENDING, SYN_RECEIVED, SYN_SENT, TIME_WAIT, TRANSITIONS)

DEFAULT_MSS = 536          # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
_SYN_FIN = SYN | FIN
_KEEPALIVE_STATES = frozenset({ESTABLISHED, CLOSE_WAIT})


def wscale_for(buf: int) -> int:
    """The smallest shift that lets a 16-bit field describe ``buf`` (RFC 7323 §2.3, max 14)."""
    s = 0
    while (buf >> s) > 0xFFFF and s < 14:
        s += 1
    return s


class Connection:
    __slots__ = (
        "layer", "cfg", "log", "counters", "lip", "lport", "rip", "rport", "key", "_name",
        "state", "sock", "listener", "passive", "detached", "error", "soft_error",
        # send sequence space (RFC 9293 §3.3.1)
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_snd_wnd",
        "snd_wscale", "snd_mss", "peer_mss", "our_mss", "sndq", "sbase", "fin_queued", "fin_seq",
        "nodelay",
        # receive sequence space
        "irs", "rcv_nxt", "rcv_adv", "rcv_wscale", "rcv_cap", "rcvq", "asm", "fin_rcvd",
        "ooo_fin", "_sws", "ack_now", "delack_segs", "last_ack_sent",
        # timers (absolute ns deadlines or None) and their bookkeeping
        "t_rtx", "t_persist", "t_delack", "t_tw", "timer_at", "output_pending", "rtt", "rtt_seq",
        "rtt_time", "retries", "syn_rexmits", "persist_backoff", "probes",
        # congestion control and loss recovery
        "cc", "recovery", "rtx_reason",
        # RFC 7323
        "ws_ok", "ts_ok", "ts_recent", "ts_offset",
        # RFC 5961 §7: time of the last ACK sent in answer to an unacceptable segment
        "_oow_ack_time",
        # RFC 2018 / 2883 / 6675: SACK
        "sack_ok", "dsack_ok", "_dsack", "_sack_due",
        # keep-alive (RFC 9293 §3.8.4) and user timeout (RFC 9293 §3.8.3, RFC 5482)
        "t_ka", "ka_probes", "ka_sent", "last_rx", "t_ut", "ut_time", "user_timeout",
        # statistics
        "segs_in", "segs_out", "bytes_in", "bytes_out", "retransmits",
        "tpl",
    )

    def __init__(self, layer, cfg, lip: bytes, lport: int, rip: bytes, rport: int, now: int):
        self.layer = layer
        self.cfg = cfg
        self.log = layer.log
        self.counters = layer.counters
        self.lip, self.lport, self.rip, self.rport = lip, lport, rip, rport
        self.key = (lip, lport, rip, rport)
        self._name = None
        self.state = CLOSED
        self.sock = None
        self.listener = None
        self.passive = False
        self.detached = False
        self.error = None
        self.soft_error = None

        iss = layer.initial_seq(lip, lport, rip, rport, now)
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_wscale = 0
        mtu_mss = layer.mtu_for(rip) - 40
        self.our_mss = min(cfg.mss, mtu_mss) if cfg.mss else mtu_mss
        self.peer_mss = DEFAULT_MSS
        self.snd_mss = min(DEFAULT_MSS, self.our_mss)
        self.sndq = ByteFifo(cfg.sndbuf)
        self.sbase = iss + 1          # sequence number of sndq's first byte (after the SYN)
        self.fin_queued = False
        self.fin_seq = None
        self.nodelay = cfg.nodelay

        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0               # right edge of the window we advertised (never shrinks)
        self.rcv_wscale = wscale_for(cfg.rcvbuf) if cfg.window_scaling else 0
        self.rcv_cap = cfg.rcvbuf
        # Rounding the scaled window up may promise up to 2**wscale bytes more than the
        # buffer size, so the byte store has that much slack (RFC 7323 §2.4).
        self.rcvq = ByteFifo(cfg.rcvbuf + (1 << self.rcv_wscale))
        self.asm = None                # out-of-order assembler, made on first need
        self.fin_rcvd = False
        self.ooo_fin = None            # sequence number of a FIN that arrived out of order
        self._sws = min(cfg.rcvbuf // 2, self.our_mss)   # RFC 9293 §3.8.6.2.2 threshold
        self.ack_now = False
        self.delack_segs = 0
        self.last_ack_sent = 0

        self.t_rtx = self.t_persist = self.t_delack = self.t_tw = None
        self.timer_at: int | None = None   # the deadline the layer's timer heap holds
        self.output_pending = False        # queued for output() at the layer's next poll
        self.rtt = RttEstimator(cfg.rto_initial, cfg.rto_min, cfg.rto_max)
        self.rtt_seq = None            # RTT timing: the ACK that ends the measurement...
        self.rtt_time = 0              # ...of the segment sent at this time
        self.retries = 0
        self.syn_rexmits = 0
        self.persist_backoff = 0
        self.probes = 0

        self.cc = congestion.get(cfg.congestion_control)(self.snd_mss, cfg.initial_window)
        self.recovery = LossRecovery(iss)   # dup ACKs, fast/SACK recovery, the scoreboard
        self.rtx_reason = "rto"

        self.ws_ok = False
        self.ts_ok = False
        self.ts_recent = 0
        self.ts_offset = layer.rng.getrandbits(32)   # RFC 7323 §5.4: random TSval offset
        self._oow_ack_time = None

        self.sack_ok = False           # both SYNs carried SACK-permitted (RFC 2018 §2)
        self.dsack_ok = False
        self._dsack = None             # RFC 2883: a duplicate range to report in the next ACK
        self._sack_due = False         # SACK blocks to send: out-of-order data held or a D-SACK

        self.t_ka = None
        self.ka_probes = 0
        self.ka_sent = 0
        self.last_rx = now
        self.t_ut = None
        self.ut_time = now
        self.user_timeout = cfg.user_timeout

        self.segs_in = self.segs_out = self.bytes_in = self.bytes_out = 0
        self.retransmits = 0
        # The header template: ports and the checksum words fixed for this connection.
        self.tpl = SegmentTemplate(lip, rip, lport, rport)

    # ------------------------------------------------------------------ naming, logging
    @property
    def name(self) -> str:
        if self._name is None:
            self._name = "%d.%d.%d.%d:%d>%d.%d.%d.%d:%d" % (*self.lip, self.lport, *self.rip, self.rport)
        return self._name

    def record(self, now: int, kind: str, **fields) -> None:
        self.log.record(now, kind, conn=self.name, **fields)

    def _set_state(self, new: str, now: int) -> None:
        """The one place where the state changes (RFC 9293 §3.3.2 Figure 5)."""
        old = self.state
        if new not in TRANSITIONS[old]:
            raise AssertionError(f"TCP transition {old} -> {new} is not in the state diagram")
        self.state = new
        if self.log.enabled:
            self.record(now, "state", old=old, new=new, seq=wrap(self.snd_nxt),
                         ack=wrap(self.rcv_nxt))
        self.notify()

    def notify(self) -> None:
        """Something the application may wait for changed (state, data, room, error)."""
        sock = self.sock
        if sock is not None:
            self.layer.notify(sock)

    def want_output(self) -> None:
        """Run ``output`` at the layer's next poll."""
        self.layer.want_output(self)

    # ------------------------------------------------------------------ opening
    def open_active(self, now: int) -> None:
        """connect(): CLOSED -> SYN_SENT; the SYN leaves at the next poll."""
        self._set_state(SYN_SENT, now)
        self.want_output()

    def open_passive(self, seq: int, wnd: int, opts, now: int) -> None:
        """A SYN reached a listener (RFC 9293 §3.10.7.2): this child starts in LISTEN and
        moves to SYN_RECEIVED, answering SYN,ACK."""
        self.state = LISTEN
        self.passive = True
        self.irs = seq
        self.rcv_nxt = seq + 1
        self.last_ack_sent = self.rcv_nxt
        self.snd_wnd = wnd              # the window in a SYN is never scaled (RFC 7323 §2.2)
        self.snd_wl1 = seq
        self.max_snd_wnd = wnd
        self._take_syn_options(opts)
        self._set_state(SYN_RECEIVED, now)
        self._send_syn(now)

    def set_iss(self, iss: int) -> None:
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.recovery.set_iss(iss)
        self.sbase = iss + 1

    def open_cookie(self, peer_isn: int, mss: int, wscale, sack: bool, tsval, ts_offset: int,
                    now: int) -> None:
        """Rebuild the TCB of a handshake answered with a SYN cookie (``syncookie``): the
        SYN,ACK (ISS = the cookie) is already out; the ACK arriving now completes it."""
        cfg = self.cfg
        self.state = LISTEN
        self.passive = True
        self.irs = peer_isn
        self.rcv_nxt = peer_isn + 1
        self.last_ack_sent = self.rcv_nxt
        self.snd_wl1 = peer_isn
        self.peer_mss = mss
        self.ws_ok = bool(cfg.window_scaling and wscale is not None)
        self.snd_wscale = min(wscale, 14) if self.ws_ok else 0
        if not self.ws_ok:
            self.rcv_wscale = 0
        self.ts_ok = bool(cfg.timestamps and tsval is not None)
        if self.ts_ok:
            self.ts_recent = tsval
            self.ts_offset = ts_offset
        self.sack_ok = bool(cfg.sack and sack)
        self.dsack_ok = self.sack_ok and cfg.dsack
        self._update_snd_mss()
        w = self.rcv_cap if self.rcv_cap < 0xFFFF else 0xFFFF
        self.rcv_adv = self.rcv_nxt + w          # what the cookie SYN,ACK offered
        self.snd_nxt = self.snd_max = self.iss + 1
        self._set_state(SYN_RECEIVED, now)

    def _take_syn_options(self, opts) -> None:
        cfg = self.cfg
        mss = opts.mss
        self.peer_mss = mss if mss else DEFAULT_MSS
        # RFC 7323 §2.2: scaling is used only when both SYNs carried the option.
        if cfg.window_scaling and opts.wscale is not None:
            self.ws_ok = True
            self.snd_wscale = min(opts.wscale, 14)   # §2.3: larger values are treated as 14
        else:
            self.ws_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        if cfg.timestamps and opts.ts_val is not None:
            self.ts_ok = True
            self.ts_recent = opts.ts_val
        # RFC 2018 §2: SACK is used only when both SYNs carried SACK-permitted.
        self.sack_ok = bool(cfg.sack and opts.sack_permitted)
        self.dsack_ok = self.sack_ok and cfg.dsack
        self._update_snd_mss()

    def _update_snd_mss(self, path_mss: int | None = None) -> None:
        # RFC 9293 §3.7.1: Eff.snd.MSS = min(SendMSS, MMS_S - IP header) - TCP options
        mss = min(self.peer_mss, self.our_mss if path_mss is None else path_mss)
        if self.ts_ok:
            mss -= 12
        self.snd_mss = max(mss, 8)

    def _established(self, now: int) -> None:
        self._set_state(ESTABLISHED, now)
        self.retries = 0
        self.cc = congestion.get(self.cfg.congestion_control)(self.snd_mss, self.cfg.initial_window)
        if self.cfg.hystart:
            self.cc.enable_hystart()
        if self.syn_rexmits and self.cc.limits_window:
            # RFC 5681 §3.1: after a lost SYN or SYN/ACK the initial window is one segment.
            self.cc.cwnd = self.snd_mss
        if self.sack_ok and self.recovery.sb is None:
            self.recovery.sb = Scoreboard(self.cfg.ranges_for(self.cfg.sndbuf))
        if self.cfg.keepalive:
            self.arm_keepalive(now)
        if self.passive and self.listener is not None:
            self.listener.child_established(self, now)
        if self.fin_queued:
            self._set_state(FIN_WAIT_1, now)

    # ------------------------------------------------------------------ user calls
    def shutdown_write(self, now: int) -> None:
        """Queue our FIN after the data (RFC 9293 §3.10.4 CLOSE, as a half-close)."""
        if self.fin_queued:
            return
        self.fin_queued = True
        self.fin_seq = self.sbase + len(self.sndq)
        st = self.state
        if st is ESTABLISHED or st is SYN_RECEIVED:
            self._set_state(FIN_WAIT_1, now)
        elif st is CLOSE_WAIT:
            self._set_state(LAST_ACK, now)
        # SYN_SENT: the FIN waits for ESTABLISHED (see _established)
        self.want_output()

    def close(self, now: int) -> None:
        """The application let go of the connection (socket close())."""
        self.sock = None
        self.detached = True
        st = self.state
        if st is CLOSED:
            return
        if st is SYN_SENT:
            self._set_state(CLOSED, now)   # RFC 9293 §3.10.4: delete the TCB
            self._teardown()
            return
        if self.rcvq or (self.asm is not None and self.asm):
            # RFC 9293 §3.10.4 / RFC 1122 4.2.2.13: closing with unread data resets.
            self.counters.incr("tcp.close_unread_rst")
            self.abort(now)
            return
        self.shutdown_write(now)
        if self.state is FIN_WAIT_2 and self.t_tw is None:
            self.t_tw = now + self.cfg.fin_wait2_timeout
            self.layer.schedule(self)

    def abort(self, now: int, send_rst: bool = True) -> None:
        """RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST> in synchronized states."""
        st = self.state
        if st is CLOSED:
            return
        if send_rst and st is not SYN_SENT and st is not TIME_WAIT:
            self._emit(self.snd_nxt, RST, b"", now)
            self.counters.incr("tcp.out_rsts")
        self._set_state(CLOSED, now)
        self._teardown()

    def discard(self, now: int) -> None:
        """The TCB goes without a word (CLOSED): a child the listener drops, a TIME_WAIT
        that a new SYN ends (RFC 9293 §3.6.1)."""
        self._set_state(CLOSED, now)
        self._teardown()

    def send_ack(self, now: int) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> now (an ACK, a challenge ACK)."""
        self._emit(self.snd_nxt, ACK, b"", now)

    def _fail(self, err: OSError, now: int) -> None:
        """The connection ends with an error the application will see."""
        self.error = err
        if self.log.enabled:
            self.record(now, "error", error=type(err).__name__, seq=wrap(self.snd_una),
                         ack=wrap(self.rcv_nxt))
        if self.state is not CLOSED:
            self._set_state(CLOSED, now)
        self._teardown()

    def _teardown(self) -> None:
        self.t_rtx = self.t_persist = self.t_delack = self.t_tw = self.t_ka = self.t_ut = None
        self.timer_at = None
        self.sndq.clear()
        self.asm = None
        self._sack_due = False
        self.layer.remove(self)
        self.notify()

    # ------------------------------------------------------------------ output
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

    def _emit(self, seq: int, flags: int, payload, now: int, opts: bytes | None = None) -> None:
        """Build one segment (RFC 9293 §3.1) with its checksum and hand it to IP."""
        if flags & ACK:
            ack = self.rcv_nxt
            self.last_ack_sent = ack
            if flags & SYN:
                # RFC 7323 §2.2: the window of a SYN segment is never scaled.
                w = self.rcv_cap if self.rcv_cap < 0xFFFF else 0xFFFF
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
                win = self.rcv_cap if self.rcv_cap < 0xFFFF else 0xFFFF
            elif flags & RST:
                win = 0
            else:
                win = self._rcv_window()
        if self._sack_due and opts is None and flags & ACK:
            opts = self._sack_option(len(payload), now)
        if opts is None:
            if self.ts_ok and not flags & RST:
                seg = self.tpl.build_ts(seq, ack, flags, win, now // MS + self.ts_offset,
                                        self.ts_recent, payload)
            else:
                seg = self.tpl.build(seq, ack, flags, win, payload)
        else:
            seg = self.tpl.build(seq, ack, flags, win, payload, opts)
        self.segs_out += 1
        self.layer.ip_output(self.lip, self.rip, 6, seg, now)

    def _sack_option(self, n: int, now: int):
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
        ts = (wrap(now // MS + self.ts_offset), self.ts_recent) if ts_ok else None
        return encode_options(ts=ts, sack_blocks=[(wrap(l), wrap(r)) for l, r in blocks[:maxb]])

    def _sack_room(self) -> int:
        """Bytes the SACK option takes on the next segment (0 when none is due)."""
        asm = self.asm
        nb = (1 if self._dsack is not None else 0) + (len(asm) if asm is not None else 0)
        if not nb:
            return 0
        maxb = 3 if self.ts_ok else 4
        return 4 + 8 * (nb if nb < maxb else maxb)

    def _duplicate_syn(self, now: int) -> None:
        """The peer's SYN again while we are in SYN_RECEIVED: maybe our SYN,ACK was lost,
        maybe the network (or an attacker) copied the SYN. Answer with the same SYN,ACK,
        but at most once per ``oow_ack_interval`` (30 copies must not draw 30 answers),
        and not as a retransmission: nothing of ours was found lost, so the initial
        window stays (RFC 5681 §3.1 lowers it only after a lost SYN or SYN,ACK)."""
        self.counters.incr("tcp.in_syn_duplicate")
        if self._oow_ack_allowed(0, SYN, now, "duplicate_syn"):
            self._send_syn(now, answer=True)

    def _send_syn(self, now: int, answer: bool = False) -> None:
        """SYN (SYN_SENT) or SYN,ACK (SYN_RECEIVED), first or again (same ISS). With
        ``answer`` the SYN,ACK replies to a duplicate SYN and is not a retransmission."""
        cfg = self.cfg
        st = self.state
        if st is SYN_SENT:
            flags = SYN
            wscale = self.rcv_wscale if cfg.window_scaling else None
            ts = (wrap(now // MS + self.ts_offset), 0) if cfg.timestamps else None
            sack = cfg.sack
        else:
            flags = SYN | ACK
            # A SYN,ACK carries an option only if the peer's SYN offered it (RFC 7323 §2.2, §3.2).
            wscale = self.rcv_wscale if self.ws_ok else None
            ts = (wrap(now // MS + self.ts_offset), self.ts_recent) if self.ts_ok else None
            sack = self.sack_ok
        opts = encode_options(mss=self.our_mss, wscale=wscale, ts=ts, sack_permitted=sack)
        self._emit(self.iss, flags, b"", now, opts)
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
                             len=0, reason="rto", flags="S" if st is SYN_SENT else "S.")
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
        if self.recovery.sack_rec and st in SENDING:
            sent = self.recovery.sack_output(self, now)
        elif st in SENDING and (self.sbase + len(self.sndq) > self.snd_nxt or self.fin_queued):
            sent = self.send_data(now, False)
        if self.ack_now and not sent and st is not SYN_RECEIVED and st is not CLOSED:
            self._emit(self.snd_nxt, ACK, b"", now)

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

    # ------------------------------------------------------------------ timers
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
                self._emit(self.snd_nxt, ACK, b"", now)
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

    def _enter_time_wait(self, now: int) -> None:
        self._set_state(TIME_WAIT, now)
        self.t_rtx = self.t_persist = None
        self.sndq.clear()
        self.asm = None
        self._sack_due = False
        # RFC 9293 §3.6.1: wait 2·MSL so that old duplicates die out and a lost final
        # ACK can be repeated. With the learning switch off, leave at the next poll.
        self.t_tw = now + 2 * self.cfg.msl if self.cfg.time_wait else now

    def log_cwnd(self, now: int, reason: str) -> None:
        if self.log.enabled:
            self.record(now, "cwnd", cwnd=self.cc.cwnd, ssthresh=self.cc.ssthresh,
                         reason=reason, seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt))

    # ------------------------------------------------------------------ input
    def input(self, seq: int, ack: int, flags: int, wnd: int, opts, payload, now: int,
              tsval: int | None = None, tsecr: int | None = None) -> None:
        """RFC 9293 §3.10.7.3 (SYN_SENT) and §3.10.7.4 (other states). ``tsval`` and
        ``tsecr`` are the segment's timestamps (the layer decodes the common options
        layout without ``opts``)."""
        self.segs_in += 1
        self.last_rx = now
        st = self.state
        if st is SYN_SENT:
            self._input_syn_sent(seq, ack, flags, wnd, opts, payload, now)
            return
        if tsval is None:
            tsval = opts.ts_val
            tsecr = opts.ts_ecr
        if tsval is not None and self.ts_ok and not flags & RST:
            # RFC 7323 §5.3 R1 (PAWS): a timestamp older than TS.Recent marks an old
            # duplicate from a previous incarnation of the sequence space.
            if seq_lt(tsval, self.ts_recent):
                self.counters.incr("tcp.in_paws")
                if self._oow_ack_allowed(len(payload), flags, now, "paws"):
                    self._emit(self.snd_nxt, ACK, b"", now)
                return
        rn = self.rcv_nxt
        d = sub(seq, rn)
        plen = len(payload)
        seglen = plen
        if flags & _SYN_FIN:
            if flags & SYN:
                seglen += 1
            if flags & FIN:
                seglen += 1
        rwnd = self.rcv_adv - rn
        if rwnd < 0:
            rwnd = 0
        if flags & RST:
            # Second check (RST) on the segment as it arrived, before any trimming.
            self._rst_arrived(d, rwnd, now)
            return
        if d == -1 and flags & SYN and flags & ACK:
            # A repeated SYN,ACK: its SYN is old news, its ACK may not be. Simultaneous
            # open (RFC 9293 Figure 8) needs the ACK; a peer still in SYN_RECEIVED needs
            # our ACK again. So drop the SYN, keep the rest, answer.
            flags &= ~SYN
            d = 0
            seglen -= 1
            self.ack_now = True
        # First: is the segment acceptable? (the four cases of RFC 9293 §3.10.7.4)
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
            return
        s = rn + d
        seq_in = s                     # SEG.SEQ as it arrived, for the TS.Recent rule
        if d < 0:
            if plen and self.dsack_ok:
                ds = s + 1 if flags & SYN else s
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
            s = rn
            d = 0
        over = d + plen - rwnd
        if over > 0:
            # Trim what lies beyond the window; a FIN there goes too.
            payload = payload[:plen - over]
            plen -= over
            flags &= ~FIN
            self.ack_now = True
            self.counters.incr("tcp.in_trimmed")

        # Second (RST) was handled above, on the untrimmed segment.
        # Fourth: SYN in a synchronized state -> challenge ACK (RFC 9293 §3.10.7.4,
        # RFC 5961 §4), never a reset of the connection.
        if flags & SYN:
            if st is SYN_RECEIVED and self.passive:
                self.counters.incr("tcp.attempt_fails")
                self._set_state(LISTEN, now)
                self._teardown()
                return
            self.counters.incr("tcp.in_syn_challenged")
            self.layer.challenge_ack(self, now)     # RFC 5961 §4.2
            return
        # Fifth: ACK.
        if not flags & ACK:
            self.counters.incr("tcp.in_no_ack")
            return
        una = self.snd_una
        da = sub(ack, una)
        a = una + da
        if st is SYN_RECEIVED:
            if 0 < da and a <= self.snd_max:
                self.snd_wnd = wnd << self.snd_wscale
                self.snd_wl1 = s
                self.snd_wl2 = a
                if self.snd_wnd > self.max_snd_wnd:
                    self.max_snd_wnd = self.snd_wnd
                self._established(now)
                st = self.state
            else:
                # <SEQ=SEG.ACK><CTL=RST>
                self.layer.send_rst(self.lip, self.rip, self.lport, self.rport, ack, 0, RST, now)
                return
        if a > self.snd_max:
            # It acknowledges something not yet sent: ACK and drop (§3.10.7.4 fifth;
            # RFC 5961 §5.2 makes that ACK a rate-limited challenge ACK).
            self.counters.incr("tcp.in_ack_unsent")
            if self._oow_ack_allowed(plen, flags, now, "ack_unsent"):
                if self.cfg.ack_check:
                    self.layer.challenge_ack(self, now)
                else:
                    self._emit(self.snd_nxt, ACK, b"", now)
            return
        if da < 0 and self.cfg.ack_check and -da > self.max_snd_wnd:
            # RFC 5961 §5.2: SEG.ACK below SND.UNA - MAX.SND.WND is not acceptable: the
            # segment (and any data it carries -- a blind injection) is dropped and a
            # challenge ACK sent.
            self.counters.incr("tcp.in_ack_too_old")
            if self._oow_ack_allowed(plen, flags, now, "ack_too_old"):
                self.layer.challenge_ack(self, now)
            return
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
            # Window update (SND.WL1 / SND.WL2 rule, RFC 9293 §3.10.7.4 fifth).
            wl1 = self.snd_wl1
            if wl1 < s or (wl1 == s and self.snd_wl2 <= a):
                if swnd != self.snd_wnd:
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
                self.snd_wl1 = s
                self.snd_wl2 = a
        fin_seq = self.fin_seq
        if fin_seq is not None and self.snd_una > fin_seq:
            # Our FIN is acknowledged.
            if st is FIN_WAIT_1:
                self._set_state(FIN_WAIT_2, now)
                st = FIN_WAIT_2
                self.t_rtx = None
                if self.detached and self.t_tw is None:
                    self.t_tw = now + self.cfg.fin_wait2_timeout
            elif st is CLOSING:
                self._enter_time_wait(now)
                self.output(now)
                return
            elif st is LAST_ACK:
                self._set_state(CLOSED, now)
                self._teardown()
                return

        # Sixth: URG. Urgent data is delivered inline (RFC 6093 recommends not using it).
        if flags & URG:
            self.counters.incr("tcp.in_urg")

        # Seventh: segment text.
        if plen:
            if st in RECEIVING:
                if self.detached:
                    # Nobody will read it: tell the peer (RFC 1122 4.2.2.13, as Linux does).
                    self.counters.incr("tcp.in_data_after_close")
                    self.abort(now)
                    return
                if d == 0:
                    self._rcv_in_order(payload, plen, now)
                else:
                    self._rcv_out_of_order(s, payload, now)
            else:
                self.counters.incr("tcp.in_data_ignored")
        # Eighth: FIN.
        if flags & FIN:
            if s + plen == self.rcv_nxt:
                self._fin_received(now)
            elif self.cfg.ooo_buffering and st in RECEIVING:
                self.ooo_fin = s + plen
                self.ack_now = True
        self.output(now)

    def _rcv_in_order(self, payload, plen: int, now: int) -> None:
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
                # RFC 1122 4.2.3.2 / RFC 5681 §4.2: ACK at least every second segment,
                # and within the delayed-ACK timeout.
                segs = self.delack_segs + 1
                if segs >= 2:
                    self.ack_now = True
                else:
                    self.delack_segs = segs
                    if self.t_delack is None:
                        self.t_delack = now + self.cfg.delack_ms * MS
            else:
                self.ack_now = True
        self.notify()

    def _rcv_out_of_order(self, s: int, payload, now: int) -> None:
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
        else:
            self.counters.incr("tcp.ofo_dropped")

    def _fin_received(self, now: int) -> None:
        self.rcv_nxt += 1
        self.fin_rcvd = True
        self.ooo_fin = None
        self.ack_now = True      # a FIN is acknowledged at once
        st = self.state
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
        sb = self.recovery.sb
        if sb is not None and sb.starts:
            sb.advance(a)
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
                self.record(now, "rtt", rtt_ms=rtt / MS, srtt_ms=est.srtt / MS,
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
            cc.on_ack(acked, now, self.rtt.srtt, self.snd_max - a)
            if cc.cwnd != old and self.log.enabled:
                self.log_cwnd(now, "ack")
        recovery.dupacks = 0
        recovery.limited = 0

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
            self._emit(self.snd_nxt, ACK, b"", now)

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

    def _rst_arrived(self, d: int, rwnd: int, now: int) -> None:
        """RFC 9293 §3.10.7.4 first and second checks for a segment with RST, made on
        SEG.SEQ as it arrived (``d`` = SEG.SEQ - RCV.NXT): RFC 5961 §3.2 resets only when
        SEG.SEQ == RCV.NXT exactly; a SEG.SEQ elsewhere in the window earns a challenge
        ACK; outside the window the RST is dropped. Data, SYN or FIN riding on the RST do
        not move SEG.SEQ: trimming them first would let a blind attacker hit any of a
        payload's worth of values below RCV.NXT instead of one."""
        in_window = d == 0 if rwnd == 0 else 0 <= d < rwnd
        if not in_window:
            self.counters.incr("tcp.in_rst_out_of_window")
            return
        if d != 0 and self.cfg.rst_challenge:
            self.counters.incr("tcp.in_rst_challenged")
            self.layer.challenge_ack(self, now)
            return
        self._on_rst(now)

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

    def _input_syn_sent(self, seq, ack, flags, wnd, opts, payload, now) -> None:
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
        w = self.rcv_cap if self.rcv_cap < 0xFFFF else 0xFFFF
        self.rcv_adv = self.rcv_nxt + w
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

    # ------------------------------------------------------------------ ICMP
    def icmp(self, kind: str, seq: int, mtu: int | None, err: OSError | None, now: int) -> None:
        """An ICMP error quoting one of our segments (RFC 1122 4.2.3.9, RFC 5927)."""
        d = sub(seq, self.snd_una)
        s = self.snd_una + d
        if not (self.snd_una <= s < self.snd_max or (self.state is SYN_SENT and s == self.iss)):
            self.counters.incr("tcp.icmp_out_of_window")   # RFC 5927 §4.1: forged or stale
            return
        if kind == "frag_needed":
            if mtu and mtu >= 68:
                old = self.snd_mss
                self._update_snd_mss(min(self.our_mss, mtu - 40))
                if self.snd_mss < old:
                    self.counters.incr("tcp.pmtu_updates")
                    self.cc.set_mss(self.snd_mss)
                    if self.log.enabled:
                        self.record(now, "pmtu", mtu=mtu, mss=self.snd_mss,
                                     seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt))
                    if self.state not in (SYN_SENT, SYN_RECEIVED) and self.snd_max > self.snd_una:
                        self.rtx_reason = "pmtu"
                        self.snd_nxt = self.snd_una
                        self.retransmit_first(now)
            return
        if kind == "hard" and self.state is SYN_SENT:
            # A port/protocol unreachable answering our SYN: nobody listens there.
            self.counters.incr("tcp.attempt_fails")
            self._fail(err or ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), now)
            return
        # Soft error (RFC 1122 4.2.3.9): remember it, report it if we time out.
        self.soft_error = err
