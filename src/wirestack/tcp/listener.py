"""The listening side of TCP: one ``Listener`` per listening socket (RFC 9293 §3.10.7.2).

A listener owns what exists before a connection does: the backlog, the half-open children
(SYN_RECEIVED), the accept queue of established ones, SYN cookies (RFC 4987 §3.6) when the
backlog is full, and the decision to let a new SYN end an old connection's TIME_WAIT
(RFC 9293 §3.6.1, RFC 6191). Linux keeps the same job in ``tcp_minisocks.c``.

Half-open children and the accept queue together hold at most ``backlog`` TCBs. Beyond
that a SYN gets a SYN cookie instead of a TCB, so memory stays bounded under a SYN flood
while legitimate clients still connect; with ``syn_cookies`` off it is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..storage import BoundedQueue
from ..units import MS
from ..wire.tcp import ACK, FIN, RST, SYN, SegmentTemplate, TcpOptions, encode_options
from . import syncookie
from .config import TcpConfig
from .connection import Connection, wscale_for
from .opening import negotiated
from .seq import le as seq_le
from .seq import lt as seq_lt
from .seq import wrap
from .states import CLOSED, LISTEN
from .tcb import our_mss_for, syn_window

if TYPE_CHECKING:
    from ..wire.bytes_like import BytesLike
    from .layer import TcpLayer
    from .opening import Opening
    from .tcb import Tcb
    from .socket import TcpSocket


class Listener:
    """A listening endpoint ``(ip, port)``; ``sock`` is the application's handle."""

    __slots__ = ("layer", "sock", "cfg", "ip", "port", "backlog", "acceptq", "children",
                 "cookie_until")

    def __init__(self, layer: TcpLayer, sock: TcpSocket, cfg: TcpConfig, ip: bytes, port: int,
                 backlog: int) -> None:
        self.layer = layer
        self.sock = sock
        self.cfg = cfg
        self.ip = ip
        self.port = port
        self.backlog = backlog
        self.acceptq: BoundedQueue[Tcb] = BoundedQueue(backlog)
        self.children: set[Tcb] = set()          # half-open: SYN_RECEIVED
        self.cookie_until = -1   # SYN cookies are accepted until then (after sending one)

    @property
    def key(self) -> tuple[bytes, int]:
        return self.ip, self.port

    # ------------------------------------------------------------------ segment arrival
    def input(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
              flags: int, wnd: int, opts: TcpOptions, payload: BytesLike, now: int,
              min_iss: int | None = None, tsval: int | None = None,
              tsecr: int | None = None) -> None:
        """RFC 9293 §3.10.7.2: a segment for the LISTEN state."""
        layer = self.layer
        counters = layer.counters
        if flags & SYN and flags & (FIN | RST):
            # SYN+FIN or SYN+RST: no TCP opens a connection that way (a scanner's probe);
            # dropped and counted, as Linux and FreeBSD do.
            counters.incr("tcp.in_syn_bad_flags")
            return
        if flags & RST:
            return
        if flags & ACK:
            if not flags & SYN and now < self.cookie_until and self.cfg.syn_cookies:
                if self._cookie_ack(src, dst, sport, dport, seq, ack, flags, wnd, opts,
                                    payload, now, tsval, tsecr):
                    return
            counters.incr("tcp.in_listen_ack")
            layer.send_rst(dst, src, dport, sport, ack, 0, RST, now)
            return
        if not flags & SYN:
            counters.incr("tcp.in_listen_drop")
            return
        nacc = len(self.acceptq)
        if len(self.children) + nacc >= self.backlog:
            if self.cfg.syn_cookies and nacc < self.backlog:
                self._send_cookie(src, dst, sport, dport, seq, opts, now)
                return
            # Bounded backlog: the peer will retransmit its SYN (RFC 9293 §3.10.7.2 allows
            # not answering); we count it like Linux's ListenOverflows.
            counters.incr("tcp.listen_overflow")
            return
        # The SYN,ACK first, built from what the child will use (the ISS, the TSval offset,
        # the header template, the options both SYNs agree on), and handed to the device at
        # once when the runtime asked for that (``push_output``): the peer's connect() waits
        # for it, not for the child's TCB, made after it from the same values. (Linux
        # answers from a small request_sock; here the child is the whole connection.)
        cfg = self.cfg
        iss = layer.initial_seq(dst, dport, src, sport, now)
        if min_iss is not None and seq_lt(iss, min_iss):
            iss = min_iss
        ts_offset = layer.rng.getrandbits(32)      # RFC 7323 §5.4: random per connection
        tpl = SegmentTemplate(dst, src, dport, sport)
        ws_ok, ts_ok, sack_ok = negotiated(cfg, opts)
        mss = our_mss_for(cfg, layer.mtu_for(src))
        self._send_syn_ack(dst, src, tpl, iss, seq, mss,
                           wscale_for(cfg.rcvbuf) if ws_ok else None,
                           (now // MS + ts_offset, opts.ts_val or 0) if ts_ok else None,
                           sack_ok, now)
        conn = Connection(layer, cfg, dst, dport, src, sport, now, passive=True, iss=iss,
                          ts_offset=ts_offset, tpl=tpl, our_mss=mss)
        conn.listener = self
        self.children.add(conn)
        layer.add(conn)
        counters["tcp.passive_opens"] += 1
        conn.open_passive(seq, wnd, opts, now, answered=True)
        layer.schedule(conn)

    def _send_syn_ack(self, lip: bytes, rip: bytes, tpl: SegmentTemplate, iss: int, seq: int,
                      mss: int, wscale: int | None, ts: tuple[int, int] | None, sack: bool,
                      now: int) -> None:
        """Our SYN,ACK to a SYN whose sequence number is ``seq``: its window is never scaled
        (RFC 7323 §2.2) and it offers only the options the SYN offered."""
        layer = self.layer
        cfg = self.cfg
        options = encode_options(mss=mss, wscale=wscale, ts=ts, sack_permitted=sack)
        layer.counters["tcp.out_segs"] += 1
        layer.ip_output(lip, rip, 6, tpl.build(iss, seq + 1, SYN | ACK, syn_window(cfg.rcvbuf), b"",
                                                   options), now)
        if layer.push_output is not None:
            layer.push_output()

    def _send_cookie(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int,
                     opts: TcpOptions, now: int) -> None:
        """A stateless SYN,ACK whose ISS is a SYN cookie (RFC 4987 §3.6)."""
        cfg = self.cfg
        layer = self.layer
        secret = layer.isn_secret
        idx = syncookie.mss_index(opts.mss if opts.mss else 536)
        cookie = syncookie.make(secret, dst, dport, src, sport, seq, now, idx)
        ts = None
        wscale = None
        sack = False
        if cfg.timestamps and opts.ts_val is not None:
            # Only with timestamps can the peer's window scale and SACK-permitted be kept.
            peer_ws = min(opts.wscale, 14) if cfg.window_scaling and opts.wscale is not None else None
            sack = bool(cfg.sack and opts.sack_permitted)
            off = syncookie.ts_offset(secret, dst, dport, src, sport)
            tsv = syncookie.encode_ts(wrap(now // MS + off), peer_ws, sack)
            ts = (tsv, opts.ts_val)
            if peer_ws is not None:
                wscale = wscale_for(cfg.rcvbuf)
        layer.counters.incr("tcp.syncookies_sent")
        self.cookie_until = now + 2 * syncookie.PERIOD
        self._send_syn_ack(dst, src, SegmentTemplate(dst, src, dport, sport), cookie, seq,
                           our_mss_for(cfg, layer.mtu_for(src)), wscale, ts, sack, now)

    def _cookie_ack(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
                    flags: int, wnd: int, opts: TcpOptions, payload: BytesLike, now: int,
                    tsval: int | None, tsecr: int | None) -> bool:
        """An ACK that may complete a cookie handshake. True when it was ours (the
        connection now exists, or the accept queue was full and it is dropped)."""
        layer = self.layer
        counters = layer.counters
        cookie = wrap(ack - 1)
        peer_isn = wrap(seq - 1)
        idx = syncookie.check(layer.isn_secret, dst, dport, src, sport, peer_isn, cookie, now)
        if idx is None:
            counters.incr("tcp.syncookies_failed")
            return False
        if len(self.acceptq) >= self.backlog:
            counters.incr("tcp.listen_overflow")
            return True
        cfg = self.cfg
        wscale: int | None = None
        sack, ts_ok = False, False
        if tsecr and tsval is not None and cfg.timestamps:
            wscale, sack = syncookie.decode_ts(tsecr)
            ts_ok = True
        counters.incr("tcp.syncookies_recv")
        conn = Connection(layer, cfg, dst, dport, src, sport, now, passive=True)
        conn.set_iss(cookie)
        conn.listener = self
        self.children.add(conn)
        layer.add(conn)
        counters.incr("tcp.passive_opens")
        off = syncookie.ts_offset(layer.isn_secret, dst, dport, src, sport)
        conn.open_cookie(peer_isn, syncookie.MSS_TABLE[idx], wscale, sack and cfg.sack,
                         tsval if ts_ok else None, off, now)
        conn.input(seq, ack, flags, wnd, opts, payload, now, tsval, tsecr)
        if conn.state is not CLOSED:
            layer.schedule(conn)
        return True

    def reuse_time_wait(self, conn: Opening, seq: int, opts: TcpOptions, now: int) -> bool:
        """RFC 9293 §3.6.1 / RFC 1122 4.2.2.13: a new SYN for this listener may end an old
        connection's TIME_WAIT early when its sequence number is above the old one's final
        one (and, RFC 6191, its timestamp newer). Then the old TCB goes (True) and the SYN
        is handled here."""
        if seq_le(seq, conn.rcv_nxt):
            return False
        if conn.ts_ok and opts.ts_val is not None and seq_lt(opts.ts_val, conn.ts_recent):
            return False
        self.layer.counters.incr("tcp.time_wait_reopened")
        conn.discard(now)
        return True

    # ------------------------------------------------------------------ children
    def child_established(self, conn: Opening, now: int) -> None:
        """A child completed its handshake: it waits in the accept queue."""
        self.children.discard(conn)
        if self.acceptq.put(conn):
            self.layer.notify(self.sock)
        else:   # cannot happen: children + queue <= backlog was checked at SYN time
            self.layer.counters.incr("tcp.listen_overflow")
            conn.listener = None
            conn.abort(now)

    def child_gone(self, conn: Tcb) -> None:
        self.children.discard(conn)
        self.acceptq.remove(conn)

    def accept(self) -> Connection | None:
        """The oldest established child, or None."""
        conn = self.acceptq.get()
        if conn is not None:
            conn.listener = None
        return cast("Connection | None", conn)     # (a child is a whole Connection)

    def stats(self) -> dict[str, Any]:
        return {"state": LISTEN, "backlog": self.backlog, "accept_queue": len(self.acceptq),
                "half_open": len(self.children)}

    def close(self, now: int) -> None:
        """The listening socket closed: connections nobody will accept are reset."""
        for conn in list(self.children) + self.acceptq.clear():
            conn.listener = None
            conn.detached = True
            cast("Opening", conn).abort(now)     # (a child is a whole Connection)
        self.children.clear()
