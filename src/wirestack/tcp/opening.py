"""Opening and closing, as the user calls them (RFC 9293 §3.10.1-§3.10.5): OPEN active and
passive, the options of the two SYNs (MSS §3.7.1, window scale and timestamps RFC 7323,
SACK-permitted RFC 2018), CLOSE, ABORT; and ICMP errors about our segments (RFC 5927)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, cast

from ..wire.tcp import RST, TcpOptions
from . import congestion
from .sack import Scoreboard
from .seq import sub, wrap
from .states import (CLOSE_WAIT, CLOSED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK,
                     LISTEN, SYN_RECEIVED, SYN_SENT, TIME_WAIT)
from .tcb import DEFAULT_MSS, syn_window
from .timers import Timers

if TYPE_CHECKING:
    from .config import TcpConfig
    from .connection import Connection


def negotiated(cfg: TcpConfig, opts: TcpOptions) -> tuple[bool, bool, bool]:
    """What a SYN's options and our configuration agree on: (window scaling, timestamps,
    SACK). Each is used only when both SYNs carry its option (RFC 7323 §2.2, §3.2; RFC 2018
    §2), so a SYN,ACK carries exactly these."""
    return (cfg.window_scaling and opts.wscale is not None,
            cfg.timestamps and opts.ts_val is not None,
            bool(cfg.sack and opts.sack_permitted))


class Opening(Timers):
    __slots__ = ()

    def open_active(self, now: int) -> None:
        """connect(): CLOSED -> SYN_SENT; the SYN leaves at the next poll."""
        self._set_state(SYN_SENT, now)
        self.want_output()

    def open_passive(self, seq: int, wnd: int, opts: TcpOptions, now: int,
                     answered: bool = False) -> None:
        """A SYN reached a listener (RFC 9293 §3.10.7.2): this child starts in LISTEN and
        moves to SYN_RECEIVED, answering SYN,ACK -- or, ``answered``, noting the SYN,ACK
        the listener already sent for it (``Listener.input``: built from the same fields,
        before the TCB, so that the peer's connect() does not wait for it)."""
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
        if answered:
            # What _emit notes for a SYN,ACK (its window is never scaled, RFC 7323 §2.2).
            self.rcv_adv = self.rcv_nxt + syn_window(self.rcv_cap)
            self.segs_out += 1
            self._syn_sent(now)
        else:
            self._send_syn(now)

    def set_iss(self, iss: int) -> None:
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        if not self.deferred:         # (else it is made from the new ISS)
            self.recovery.set_iss(iss)
        self.sbase = iss + 1

    def open_cookie(self, peer_isn: int, mss: int, wscale: int | None, sack: bool,
                    tsval: int | None, ts_offset: int, now: int) -> None:
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
        self.snd_wscale = min(wscale, 14) if self.ws_ok and wscale is not None else 0
        if not self.ws_ok:
            self.rcv_wscale = 0
        self.ts_ok = bool(cfg.timestamps and tsval is not None)
        if self.ts_ok and tsval is not None:
            self.ts_recent = tsval
            self.ts_offset = ts_offset
        self.sack_ok = bool(cfg.sack and sack)
        self.dsack_ok = self.sack_ok and cfg.dsack
        self._update_snd_mss()
        w = syn_window(self.rcv_cap)
        self.rcv_adv = self.rcv_nxt + w          # what the cookie SYN,ACK offered
        self.snd_nxt = self.snd_max = self.iss + 1
        self._set_state(SYN_RECEIVED, now)

    def _take_syn_options(self, opts: TcpOptions) -> None:
        mss = opts.mss
        self.peer_mss = mss if mss else DEFAULT_MSS
        ws_ok, ts_ok, self.sack_ok = negotiated(self.cfg, opts)
        if ws_ok:
            self.ws_ok = True
            self.snd_wscale = min(opts.wscale or 0, 14)   # §2.3: larger values are treated as 14
        else:
            self.ws_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        if ts_ok:
            self.ts_ok = True
            self.ts_recent = opts.ts_val or 0
        self.dsack_ok = self.sack_ok and self.cfg.dsack
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
        if self.deferred:
            self.make_deferred(False)    # (a passive child's; the controller follows)
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

    def shutdown_write(self, now: int) -> None:
        """Queue our FIN after the data (RFC 9293 §3.10.4 CLOSE, as a half-close)."""
        if self.fin_queued:
            return
        if self.deferred:             # (closed in SYN_RECEIVED, see Tcb.__init__)
            self.make_deferred(True)
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
            self.layer.schedule(cast("Connection", self))   # (self is a whole Connection)

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

    def icmp(self, kind: str, seq: int, mtu: int | None, err: OSError | None, now: int) -> None:
        """An ICMP error quoting one of our segments (RFC 1122 4.2.3.9, RFC 5927)."""
        if self.deferred:             # (a SYN_RECEIVED child, see Tcb.__init__)
            self.make_deferred(True)
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
