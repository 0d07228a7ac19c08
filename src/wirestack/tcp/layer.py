"""The TCP layer of one host: demultiplexing, listeners, ports, timers, resets.

Sans-I/O: the host calls ``input`` for every segment addressed to it, ``poll(now)`` to fire
due timers and send what applications queued, and asks ``poll_at()`` when to call again.
Segments leave through the ``ip_output`` callable given at construction.
"""

from __future__ import annotations

import errno
import heapq
import itertools

from ..trace.counters import Counters
from ..trace.events import EventLog
from ..units import MS, SEC
from ..wire.addr import ANY_IP
from ..wire.errors import MalformedPacket
from ..wire.tcp import (ACK, FIN, RST, SYN, build, decode_header, decode_options, encode_options,
                        quoted_ports_seq)
from . import syncookie
from .config import HOST_WIDE, TcpConfig
from .connection import Connection, _wscale_for
from .isn import isn
from .seq import le as seq_le
from .seq import lt as seq_lt
from .seq import wrap
from .states import CLOSED, TIME_WAIT
from .socket import TcpSocket


# ICMP (type, code) -> how TCP treats it (RFC 1122 4.2.3.9, RFC 1191, RFC 5927)
_ICMP_KIND = {(3, 2): "hard", (3, 3): "hard", (3, 4): "frag_needed"}
_ICMP_NAMES = {"port_unreachable": "hard", "proto_unreachable": "hard", "frag_needed": "frag_needed",
               "hard": "hard"}


class TcpLayer:
    def __init__(self, *, name: str = "", counters: Counters | None = None,
                 log: EventLog | None = None, rng=None, config: TcpConfig | None = None,
                 ip_output, route_source, mtu_for):
        import random
        self.name = name
        self.counters = counters if counters is not None else Counters()
        self.log = log if log is not None else EventLog(name, enabled=False)
        self.rng = rng if rng is not None else random.Random(0)
        self.config = config if config is not None else TcpConfig()
        self.ip_output = ip_output
        self.route_source = route_source
        self.mtu_for = mtu_for
        secret = self.config.isn_secret
        self._secret = secret if secret is not None else self.rng.getrandbits(128).to_bytes(16, "big")
        self._conns: dict[tuple, Connection] = {}      # (lip, lport, rip, rport) -> TCB
        self._listeners: dict[tuple, TcpSocket] = {}   # (lip or ANY, port) -> listening socket
        self._bound: dict[int, list[TcpSocket]] = {}   # port -> open sockets bound to it
        self._port_refs: dict[int, int] = {}           # port -> live connections using it
        self._heap: list = []                          # (deadline, tiebreak, conn), lazily cleaned
        self._tick = itertools.count()
        self._dirty: list[Connection] = []             # connections with output to do at poll
        self._notify: list[TcpSocket] = []             # sockets whose on_event is due
        self._now = 0
        # RFC 5961 §7 challenge ACK rate limit: a token bucket in units of 1/limit s.
        self._chal_credit = self.config.challenge_ack_limit * SEC
        self._chal_time = 0

    # ------------------------------------------------------------------ public surface
    def socket(self, **options) -> TcpSocket:
        host_wide = HOST_WIDE.intersection(options)
        if host_wide:
            raise TypeError(f"{', '.join(sorted(host_wide))}: a host-wide TCP option, not a socket "
                            f"one; set it in HostConfig(tcp=TcpConfig(...))")
        cfg = self.config.replace(**options) if options else self.config
        from . import congestion
        congestion.get(cfg.congestion_control)   # fail early on an unknown name
        return TcpSocket(self, cfg)

    def connection_count(self) -> int:
        return len(self._conns)

    def connections(self) -> list[Connection]:
        return list(self._conns.values())

    def close_all(self) -> None:
        """Close every connection as its application would (FIN, or RST with unread data):
        a host that shuts down politely, like `wirestack serve` on SIGTERM."""
        for conn in list(self._conns.values()):
            if not conn.detached:
                conn.close()

    def poll_at(self) -> int | None:
        if self._dirty or self._notify:
            return self._now
        heap = self._heap
        while heap and heap[0][2]._sched != heap[0][0]:
            heapq.heappop(heap)   # stale: that connection's deadline moved or it is gone
        return heap[0][0] if heap else None

    def poll(self, now: int) -> None:
        self._now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, conn = heapq.heappop(heap)
            if conn._sched != d:
                continue
            conn._sched = None
            if conn.state is CLOSED:
                continue
            conn.on_timer(now)
            if conn.state is not CLOSED:
                self._schedule(conn)
        # Send what applications queued, then tell them what changed. An application
        # that reacts to on_event by writing more gets it sent in the same poll (a few
        # rounds at most, so a chatty callback cannot keep us here).
        for _ in range(4):
            while self._dirty:
                dirty, self._dirty = self._dirty, []
                for conn in dirty:
                    conn._dirty = False
                    if conn.state is not CLOSED:
                        conn.output(now)
                        self._schedule(conn)
            if not self._notify:
                break
            self._flush_notify()

    def input(self, src: bytes, dst: bytes, segment, now: int) -> None:
        """One TCP segment (header + data) from IP. Never raises for bad input: it is
        counted and dropped."""
        self._now = now
        counters = self.counters
        try:
            sport, dport, seq, ack, flags, wnd, hl = decode_header(
                segment, src, dst, self.config.verify_checksum)
        except MalformedPacket as e:
            counters.incr(e.counter)
            return
        counters.incr("tcp.in_segs")
        mv = segment if isinstance(segment, memoryview) else memoryview(segment)
        try:
            # (the usual NOP NOP TS layout comes back as two numbers, without an object)
            opts, tsval, tsecr = decode_options(mv, hl, flags)
        except MalformedPacket as e:
            counters.incr(e.counter)
            return
        payload = mv[hl:]
        conn = self._conns.get((dst, dport, src, sport))
        min_iss = None
        if conn is not None:
            if conn.state is TIME_WAIT and flags & (SYN | ACK | RST) == SYN:
                if self._time_wait_reopen(conn, seq, opts):
                    # RFC 1122 4.2.2.13: the new ISS must be above the old SND.NXT, even
                    # if the ISN clock has not moved on enough.
                    min_iss = wrap(conn.snd_max + 65536)
                    conn = None
            if conn is not None:
                conn.input(seq, ack, flags, wnd, opts, payload, now, tsval, tsecr)
                if conn.state is not CLOSED:
                    self._schedule(conn)
                return
        lst = self._listeners.get((dst, dport))
        if lst is None:
            lst = self._listeners.get((ANY_IP, dport))
        if lst is not None:
            self._listen_input(lst, src, dst, sport, dport, seq, ack, flags, wnd, opts,
                               payload, now, min_iss, tsval, tsecr)
            return
        # RFC 9293 §3.10.7.1: no connection -- answer with a reset (never to a reset).
        counters.incr("tcp.in_no_socket")
        self._reset_for(src, dst, sport, dport, seq, ack, flags, len(payload), now)

    def icmp_error(self, kind, src: bytes, dst: bytes, quoted, now: int, mtu: int | None = None) -> None:
        """An ICMP error about a segment we sent from ``src`` to ``dst``; ``quoted`` holds
        at least the first 8 bytes of its TCP header. ``kind`` is the host's
        ``(type, code, mtu)`` tuple or a name ('port_unreachable', 'frag_needed', ...)."""
        self._now = now
        if isinstance(kind, tuple):
            typ, code = kind[0], kind[1]
            if len(kind) > 2 and mtu is None:
                mtu = kind[2]
            what = _ICMP_KIND.get((typ, code), "soft")
        else:
            what = _ICMP_NAMES.get(kind, "soft")
        try:
            sport, dport, seq = quoted_ports_seq(quoted)
        except MalformedPacket as e:
            self.counters.incr(e.counter)
            return
        conn = self._conns.get((src, sport, dst, dport))
        if conn is None:
            self.counters.incr("tcp.icmp_no_socket")
            return
        self.counters.incr("tcp.icmp_errors")
        err = None
        if what == "hard":
            err = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        elif what == "soft":
            err = OSError(errno.EHOSTUNREACH, "No route to host")
        conn.icmp(what, seq, mtu, err, now)
        if conn.state is not CLOSED:
            self._schedule(conn)

    # ------------------------------------------------------------------ internals
    def _isn(self, lip: bytes, lport: int, rip: bytes, rport: int, now: int) -> int:
        return isn(self._secret, lip, lport, rip, rport, now)

    def _schedule(self, conn: Connection) -> None:
        """Make sure the timer heap holds an entry no later than the connection's next
        deadline. Entries are never removed in place: one whose time differs from
        ``conn._sched`` is stale and skipped when it surfaces."""
        d = conn.deadline()
        if d is not None:
            s = conn._sched
            if s is None or d < s:
                conn._sched = d
                heapq.heappush(self._heap, (d, next(self._tick), conn))

    def _challenge_ack(self, conn: Connection, now: int) -> bool:
        """Send a challenge ACK (RFC 5961 §3.2, §4.2, §5.2) unless this host already sent
        ``challenge_ack_limit`` of them in the last second (RFC 5961 §7, like Linux's
        tcp_challenge_ack_limit): a token bucket refilled from ``now``, so an attacker
        cannot turn us into an ACK amplifier nor learn much from counting them."""
        limit = self.config.challenge_ack_limit
        if limit:
            credit = self._chal_credit + (now - self._chal_time) * limit
            cap = limit * SEC
            if credit > cap:
                credit = cap
            self._chal_time = now
            if credit < SEC:
                self._chal_credit = credit
                self.counters.incr("tcp.challenge_ack_limited")
                return False
            self._chal_credit = credit - SEC
        self.counters.incr("tcp.challenge_acks")
        conn._emit(conn.snd_nxt, ACK, b"", now)
        return True

    def _flush_notify(self) -> None:
        while self._notify:
            batch, self._notify = self._notify, []
            for sock in batch:
                sock._ev = False
                cb = sock.on_event
                if cb is not None:
                    cb()

    def _add(self, conn: Connection) -> None:
        self._conns[conn.key] = conn
        self._port_refs[conn.lport] = self._port_refs.get(conn.lport, 0) + 1

    def _remove(self, conn: Connection) -> None:
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
            left = self._port_refs.get(conn.lport, 1) - 1
            if left:
                self._port_refs[conn.lport] = left
            else:
                self._port_refs.pop(conn.lport, None)
        lst = conn.listener
        if lst is not None:
            lst._child_gone(conn)
            conn.listener = None

    def _want_output(self, conn: Connection) -> None:
        conn._want_output()

    def _send_rst(self, lip: bytes, rip: bytes, lport: int, rport: int, seq: int, ack: int,
                  flags: int, now: int) -> None:
        self.counters.incr("tcp.out_rsts")
        seg = build(lip, rip, lport, rport, wrap(seq), wrap(ack), flags, 0)
        self.ip_output(lip, rip, 6, seg, now)

    def _reset_for(self, src, dst, sport, dport, seq, ack, flags, plen, now) -> None:
        """RFC 9293 §3.10.7.1: the reset that answers a segment nobody wants."""
        if flags & RST:
            return
        if flags & ACK:
            self._send_rst(dst, src, dport, sport, ack, 0, RST, now)
        else:
            seglen = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            self._send_rst(dst, src, dport, sport, 0, seq + seglen, RST | ACK, now)

    def _listen_input(self, lst: TcpSocket, src, dst, sport, dport, seq, ack, flags, wnd,
                      opts, payload, now, min_iss=None, tsval=None, tsecr=None) -> None:
        """RFC 9293 §3.10.7.2 (LISTEN).

        Half-open connections (SYN_RECEIVED children) and the accept queue together hold
        at most ``backlog`` TCBs. Beyond that a SYN gets a SYN cookie (RFC 4987 §3.6, see
        ``syncookie``) instead of a TCB, so memory stays bounded under a SYN flood while
        legitimate clients still connect; with ``syn_cookies`` off it is dropped."""
        if flags & SYN and flags & (FIN | RST):
            # SYN+FIN or SYN+RST: no TCP opens a connection that way (a scanner's probe);
            # dropped and counted, as Linux and FreeBSD do.
            self.counters.incr("tcp.in_syn_bad_flags")
            return
        if flags & RST:
            return
        if flags & ACK:
            if not flags & SYN and now < lst._cookie_until and lst._cfg.syn_cookies:
                if self._cookie_ack(lst, src, dst, sport, dport, seq, ack, flags, wnd, opts,
                                    payload, now, tsval, tsecr):
                    return
            self.counters.incr("tcp.in_listen_ack")
            self._send_rst(dst, src, dport, sport, ack, 0, RST, now)
            return
        if not flags & SYN:
            self.counters.incr("tcp.in_listen_drop")
            return
        nacc = len(lst._acceptq)
        if len(lst._children) + nacc >= lst._backlog:
            if lst._cfg.syn_cookies and nacc < lst._backlog:
                self._send_cookie(lst, src, dst, sport, dport, seq, opts, now)
                return
            # Bounded backlog: the peer will retransmit its SYN (RFC 9293 §3.10.7.2 allows
            # not answering); we count it like Linux's ListenOverflows.
            self.counters.incr("tcp.listen_overflow")
            return
        conn = Connection(self, lst._cfg, dst, dport, src, sport, now)
        if min_iss is not None and seq_lt(conn.iss, min_iss):
            conn.set_iss(min_iss)
        conn.listener = lst
        lst._children.add(conn)
        self._add(conn)
        self.counters.incr("tcp.passive_opens")
        conn.open_passive(seq, wnd, opts, now)
        self._schedule(conn)

    def _send_cookie(self, lst: TcpSocket, src, dst, sport, dport, seq, opts, now) -> None:
        """A stateless SYN,ACK whose ISS is a SYN cookie (RFC 4987 §3.6)."""
        cfg = lst._cfg
        secret = self._secret
        mtu_mss = self.mtu_for(src) - 40
        our_mss = min(cfg.mss, mtu_mss) if cfg.mss else mtu_mss
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
                wscale = _wscale_for(cfg.rcvbuf)
        win = cfg.rcvbuf if cfg.rcvbuf < 0xFFFF else 0xFFFF
        options = encode_options(mss=our_mss, wscale=wscale, sack_permitted=sack, ts=ts)
        self.counters.incr("tcp.syncookies_sent")
        lst._cookie_until = now + 2 * syncookie.PERIOD
        seg = build(dst, src, dport, sport, cookie, wrap(seq + 1), SYN | ACK, win, b"", options)
        self.ip_output(dst, src, 6, seg, now)

    def _cookie_ack(self, lst: TcpSocket, src, dst, sport, dport, seq, ack, flags, wnd, opts,
                    payload, now, tsval, tsecr) -> bool:
        """An ACK to a listener that may complete a cookie handshake. True when it was
        ours (the connection now exists, or the accept queue was full and it is dropped)."""
        cookie = wrap(ack - 1)
        peer_isn = wrap(seq - 1)
        idx = syncookie.check(self._secret, dst, dport, src, sport, peer_isn, cookie, now)
        if idx is None:
            self.counters.incr("tcp.syncookies_failed")
            return False
        if len(lst._acceptq) >= lst._backlog:
            self.counters.incr("tcp.listen_overflow")
            return True
        cfg = lst._cfg
        wscale, sack, ts_ok = None, False, False
        if tsecr and tsval is not None and cfg.timestamps:
            wscale, sack = syncookie.decode_ts(tsecr)
            ts_ok = True
        self.counters.incr("tcp.syncookies_recv")
        conn = Connection(self, cfg, dst, dport, src, sport, now)
        conn.set_iss(cookie)
        conn.listener = lst
        lst._children.add(conn)
        self._add(conn)
        self.counters.incr("tcp.passive_opens")
        off = syncookie.ts_offset(self._secret, dst, dport, src, sport)
        conn.open_cookie(peer_isn, syncookie.MSS_TABLE[idx], wscale, sack and cfg.sack,
                         tsval if ts_ok else None, off, now)
        conn.input(seq, ack, flags, wnd, opts, payload, now, tsval, tsecr)
        if conn.state is not CLOSED:
            self._schedule(conn)
        return True

    def _time_wait_reopen(self, conn: Connection, seq: int, opts) -> bool:
        """RFC 9293 §3.6.1 / RFC 1122 4.2.2.13: a new SYN may end TIME_WAIT early when its
        sequence number is above the old connection's final one (and, RFC 6191, its
        timestamp newer). Then the old TCB goes and the SYN is handled by the listener."""
        if seq_le(seq, conn.rcv_nxt):
            return False
        if conn.ts_ok and opts.ts_val is not None and seq_lt(opts.ts_val, conn.ts_recent):
            return False
        if (conn.lip, conn.lport) not in self._listeners and (ANY_IP, conn.lport) not in self._listeners:
            return False
        self.counters.incr("tcp.time_wait_reopened")
        conn._set_state(CLOSED, self._now)
        conn._teardown()
        return True

    # ------------------------------------------------------------------ ports
    def _port_conflict(self, ip: bytes, port: int) -> bool:
        for s in self._bound.get(port, ()):
            bip = s._bind_ip
            if bip == ANY_IP or ip == ANY_IP or bip == ip:
                return True
        return False

    def _bind(self, sock: TcpSocket, ip: bytes, port: int) -> int:
        if port == 0:
            port = self._ephemeral(ip, None, None)
        elif self._port_conflict(ip, port):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self._bound.setdefault(port, []).append(sock)
        return port

    def _unbind(self, sock: TcpSocket, port: int) -> None:
        lst = self._bound.get(port)
        if lst and sock in lst:
            lst.remove(sock)
            if not lst:
                del self._bound[port]

    def _ephemeral(self, lip: bytes, rip: bytes | None, rport: int | None) -> int:
        """A port from the dynamic range (RFC 6056 §3.3.1: random start, then sequential
        search) that is not bound and, for a connect, not part of a live 4-tuple."""
        lo, hi = self.config.ephemeral_ports
        span = hi - lo + 1
        start = self.rng.randrange(span)
        for i in range(span):
            p = lo + (start + i) % span
            if self._port_conflict(lip, p):
                continue
            if rip is None:
                if p in self._port_refs:
                    continue
            elif (lip, p, rip, rport) in self._conns:
                continue
            return p
        raise OSError(errno.EADDRNOTAVAIL, "No free ephemeral port")
