"""The TCP layer of one host: demultiplexing, listeners, ports, timers, resets.

Sans-I/O: the host calls ``input`` for every segment addressed to it, ``poll(now)`` to fire
due timers and send what applications queued, and asks ``poll_at()`` when to call again.
Segments leave through the ``ip_output`` callable given at construction.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

from ..trace.counters import Counters
from ..trace.events import EventLog
from ..units import SEC
from ..wire.addr import ANY_IP
from ..wire.bytes_like import BytesLike
from ..wire.errors import MalformedPacket
from ..wire.tcp import ACK, FIN, RST, SYN, build, decode_segment, quoted_ports_seq
from .config import HOST_WIDE, TcpConfig
from .connection import Connection
from .isn import IsnGenerator
from .listener import Listener
from .output import Output
from .tcb import Tcb
from .seq import wrap
from .states import CLOSED, TIME_WAIT
from .socket import TcpSocket


# ICMP (type, code) -> how TCP treats it (RFC 1122 4.2.3.9, RFC 1191, RFC 5927)
_ICMP_KIND = {(3, 2): "hard", (3, 3): "hard", (3, 4): "frag_needed"}
_ICMP_NAMES = {"port_unreachable": "hard", "proto_unreachable": "hard", "frag_needed": "frag_needed",
               "hard": "hard"}


class TcpLayer:
    def __init__(self, *, name: str = "", counters: Counters | None = None,
                 log: EventLog | None = None, rng: random.Random | None = None,
                 config: TcpConfig | None = None,
                 ip_output: Callable[[bytes, bytes, int, bytes, int], None],
                 route_source: Callable[[bytes], bytes | None],
                 mtu_for: Callable[[bytes], int]) -> None:
        self.name = name
        self.counters = counters if counters is not None else Counters()
        self.log = log if log is not None else EventLog(name, enabled=False)
        self.rng = rng if rng is not None else random.Random(0)
        self.config = config if config is not None else TcpConfig()
        self.ip_output = ip_output
        self.route_source = route_source
        self.mtu_for = mtu_for
        secret = self.config.isn_secret
        # the key of ISNs (RFC 6528) and SYN cookies (RFC 4987)
        self.isn_secret = secret if secret is not None else self.rng.getrandbits(128).to_bytes(16, "big")
        self._isn = IsnGenerator(self.isn_secret)
        self._conns: dict[tuple[bytes, int, bytes, int], Connection] = {}   # 4-tuple -> TCB
        self._listeners: dict[tuple[bytes, int], Listener] = {}   # (lip or ANY, port) -> listener
        # port -> the open sockets bound to it, with the address each is bound to
        self._bound: dict[int, list[tuple[TcpSocket, bytes]]] = {}
        self._port_refs: dict[int, int] = {}           # port -> live connections using it
        self._heap: list[tuple[int, int, Connection]] = []   # (deadline, tiebreak, conn), lazily cleaned
        self._tick = itertools.count()
        self._dirty: list[Connection] = []             # connections with output to do at poll
        self._notify: list[TcpSocket] = []             # sockets whose on_event is due...
        self._notify_set: set[TcpSocket] = set()       # ...the same, for a quick lookup
        # False: a segment's answer (the ACK, data its ACK lets out) leaves from input().
        # True: it waits for the next poll(). A runtime that feeds a whole batch of frames
        # before polling (the real-time TAP loop) sets it, so a burst of N in-order
        # segments is answered by one cumulative ACK: a stretch ACK, like a Linux receiver
        # behind GRO (RFC 5681 §4.2 asks for every second segment; the batch size bounds
        # the stretch, see runtime/realtime.py).
        self.defer_output = False
        # TCP segmentation offload (0 = off): new data may leave as one super-segment of up
        # to this many payload bytes, a multiple of the MSS, which the device (a NIC's TSO,
        # the kernel behind a TAP with a virtio-net header) cuts into MSS-sized segments
        # with the same headers, completing each checksum.  Set by the real-time runtime.
        self.gso_max = 0
        # Set by a real-time runtime: hands what IP has queued to the device at once, so a
        # listener's SYN,ACK leaves before the child's TCB is made (see Listener.input).
        self.push_output: Callable[[], None] | None = None
        self._now = 0
        # RFC 5961 §7 challenge ACK rate limit: a token bucket in units of 1/limit s.
        self._chal_credit = self.config.challenge_ack_limit * SEC
        self._chal_time = 0

    # ------------------------------------------------------------------ public surface
    def socket(self, **options: Any) -> TcpSocket:
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
                conn.close(self._now)

    def poll_at(self) -> int | None:
        if self._dirty or self._notify:
            return self._now
        heap = self._heap
        while heap and heap[0][2].timer_at != heap[0][0]:
            heapq.heappop(heap)   # stale: that connection's deadline moved or it is gone
        return heap[0][0] if heap else None

    def poll(self, now: int) -> None:
        self._now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, conn = heapq.heappop(heap)
            if conn.timer_at != d:
                continue
            conn.timer_at = None
            if conn.state is CLOSED:
                continue
            conn.on_timer(now)
            if conn.state is not CLOSED:
                self.schedule(conn)
        # Send what applications queued, then tell them what changed. An application
        # that reacts to on_event by writing more gets it sent in the same poll (a few
        # rounds at most, so a chatty callback cannot keep us here).
        for _ in range(4):
            while self._dirty:
                dirty, self._dirty = self._dirty, []
                for conn in dirty:
                    conn.output_pending = False
                    if conn.state is not CLOSED:
                        conn.output(now)
                        self.schedule(conn)
            if not self._notify:
                break
            self._flush_notify()

    def input(self, src: bytes, dst: bytes, segment: BytesLike, now: int,
              checksum_ok: bool = False) -> None:
        """One TCP segment (header + data) from IP. Never raises for bad input: it is
        counted and dropped. ``checksum_ok``: the device already vouched for the checksum
        (receive checksum offload), so it is not summed again."""
        self._now = now
        counters = self.counters
        try:
            # (the usual NOP NOP TS layout comes back as two numbers, without an object)
            sport, dport, seq, ack, flags, wnd, opts, tsval, tsecr, payload = decode_segment(
                segment, src, dst, self.config.verify_checksum and not checksum_ok)
        except MalformedPacket as e:
            if e.counter == "tcp.in_bad_options":
                counters.incr("tcp.in_segs")     # the header was good: it counts as received
            counters.incr(e.counter)
            return
        counters["tcp.in_segs"] += 1     # (Counters starts every name at 0)
        conn = self._conns.get((dst, dport, src, sport))
        min_iss = None
        if conn is not None:
            if conn.state is TIME_WAIT and flags & (SYN | ACK | RST) == SYN:
                lst = self._listener_for(dst, dport)
                if lst is not None and lst.reuse_time_wait(conn, seq, opts, now):
                    # RFC 1122 4.2.2.13: the new ISS must be above the old SND.NXT, even
                    # if the ISN clock has not moved on enough.
                    min_iss = wrap(conn.snd_max + 65536)
                    conn = None
            if conn is not None:
                conn.input(seq, ack, flags, wnd, opts, payload, now, tsval, tsecr)
                if conn.state is not CLOSED:
                    self.schedule(conn)
                return
        lst = self._listener_for(dst, dport)
        if lst is not None:
            lst.input(src, dst, sport, dport, seq, ack, flags, wnd, opts, payload, now, min_iss,
                      tsval, tsecr)
            return
        # RFC 9293 §3.10.7.1: no connection -- answer with a reset (never to a reset).
        counters.incr("tcp.in_no_socket")
        self._reset_for(src, dst, sport, dport, seq, ack, flags, len(payload), now)

    def _listener_for(self, ip: bytes, port: int) -> Listener | None:
        lst = self._listeners.get((ip, port))
        if lst is None:
            lst = self._listeners.get((ANY_IP, port))
        return lst

    def icmp_error(self, kind: tuple[int, ...] | str, src: bytes, dst: bytes, quoted: BytesLike,
                   now: int, mtu: int | None = None) -> None:
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
        err: OSError | None = None
        if what == "hard":
            err = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        elif what == "soft":
            err = OSError(errno.EHOSTUNREACH, "No route to host")
        conn.icmp(what, seq, mtu, err, now)
        if conn.state is not CLOSED:
            self.schedule(conn)

    # ------------------------------------------------------------------ for connections
    # The small internal API that connections, listeners and sockets use (nothing else of
    # the layer is theirs to touch).
    @property
    def now(self) -> int:
        """The time of the latest input or poll: what a socket call made without ``now``
        acts at."""
        return self._now

    def initial_seq(self, lip: bytes, lport: int, rip: bytes, rport: int, now: int) -> int:
        """The ISN of a new connection (RFC 6528, see ``isn``)."""
        return self._isn(lip, lport, rip, rport, now)

    def schedule(self, conn: Connection) -> None:
        """Make sure the timer heap holds an entry no later than the connection's next
        deadline. Entries are never removed in place: one whose time differs from
        ``conn.timer_at`` is stale and skipped when it surfaces."""
        d = conn.deadline()
        if d is not None:
            s = conn.timer_at
            if s is None or d < s:
                conn.timer_at = d
                heapq.heappush(self._heap, (d, next(self._tick), conn))

    def want_output(self, conn: Connection) -> None:
        """The connection has something to send: it runs ``output`` at the next poll."""
        if not conn.output_pending:
            conn.output_pending = True
            self._dirty.append(conn)

    def notify(self, sock: TcpSocket) -> None:
        """The socket's ``on_event`` is due (once, however often this is called before)."""
        if sock not in self._notify_set:
            self._notify_set.add(sock)
            self._notify.append(sock)

    def challenge_ack(self, conn: Output, now: int) -> bool:
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
        conn.send_challenge_ack(now)
        return True

    def add(self, conn: Connection) -> None:
        self._conns[conn.key] = conn
        self._port_refs[conn.lport] = self._port_refs.get(conn.lport, 0) + 1

    def remove(self, conn: Tcb) -> None:
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
            left = self._port_refs.get(conn.lport, 1) - 1
            if left:
                self._port_refs[conn.lport] = left
            else:
                self._port_refs.pop(conn.lport, None)
        lst = conn.listener
        if lst is not None:
            lst.child_gone(conn)
            conn.listener = None

    def add_listener(self, lst: Listener) -> None:
        self._listeners[lst.key] = lst

    def remove_listener(self, lst: Listener) -> None:
        if self._listeners.get(lst.key) is lst:
            del self._listeners[lst.key]

    def send_segment(self, lip: bytes, rip: bytes, lport: int, rport: int, seq: int, ack: int,
                     flags: int, window: int, options: bytes, now: int) -> None:
        """A segment that belongs to no connection (a SYN cookie's SYN,ACK, a reset)."""
        seg = build(lip, rip, lport, rport, wrap(seq), wrap(ack), flags, window, b"", options)
        self.ip_output(lip, rip, 6, seg, now)

    def send_rst(self, lip: bytes, rip: bytes, lport: int, rport: int, seq: int, ack: int,
                 flags: int, now: int) -> None:
        self.counters.incr("tcp.out_rsts")
        self.counters["tcp.out_segs"] += 1
        self.send_segment(lip, rip, lport, rport, seq, ack, flags, 0, b"", now)

    # ------------------------------------------------------------------ internals
    def _flush_notify(self) -> None:
        while self._notify:
            batch, self._notify = self._notify, []
            for sock in batch:
                self._notify_set.discard(sock)
                cb = sock.on_event
                if cb is not None:
                    cb()

    def _reset_for(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
                   flags: int, plen: int, now: int) -> None:
        """RFC 9293 §3.10.7.1: the reset that answers a segment nobody wants."""
        if flags & RST:
            return
        if flags & ACK:
            self.send_rst(dst, src, dport, sport, ack, 0, RST, now)
        else:
            seglen = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            self.send_rst(dst, src, dport, sport, 0, seq + seglen, RST | ACK, now)

    # ------------------------------------------------------------------ ports
    def _port_conflict(self, ip: bytes, port: int) -> bool:
        for _sock, bip in self._bound.get(port, ()):
            if bip == ANY_IP or ip == ANY_IP or bip == ip:
                return True
        return False

    def bind(self, sock: TcpSocket, ip: bytes, port: int) -> int:
        """Bind ``sock`` to ``(ip, port)``; port 0 picks an ephemeral one. Returns the port."""
        if port == 0:
            port = self._ephemeral(ip, None, None)
        elif self._port_conflict(ip, port):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self._bound.setdefault(port, []).append((sock, ip))
        return port

    def bind_for_connect(self, sock: TcpSocket, lip: bytes, rip: bytes, rport: int) -> int:
        """An unbound socket's connect(): an ephemeral port not part of a live 4-tuple to
        ``(rip, rport)``, bound on any address."""
        port = self._ephemeral(lip, rip, rport)
        self._bound.setdefault(port, []).append((sock, ANY_IP))
        return port

    def in_use(self, key: tuple[bytes, int, bytes, int]) -> bool:
        """A connection with this 4-tuple exists."""
        return key in self._conns

    def unbind(self, sock: TcpSocket, port: int) -> None:
        lst = self._bound.get(port)
        if lst:
            lst[:] = [e for e in lst if e[0] is not sock]
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
