"""ICMP on the host (RFC 792, RFC 1122 §3.2.2): echo replies, ping sockets, and turning
ICMP errors into errors on the sockets they concern."""

from __future__ import annotations

import errno
from collections import deque
from typing import Callable

from ..contracts import DUE_NOW
from ..wire import icmp as icmp_codec
from ..wire.addr import ip_aton, ip_ntoa
from ..wire.errors import MalformedPacket


class EchoReply:
    __slots__ = ("src", "seq", "ttl", "payload", "time", "size")

    def __init__(self, src: bytes, seq: int, ttl: int, payload: bytes, time: int, size: int):
        self.src = src
        self.seq = seq
        self.ttl = ttl
        self.payload = payload
        self.time = time   # when it arrived (ns)
        self.size = size   # ICMP message length (8 + data), what ping prints as "bytes"


class IcmpErrorReport:
    __slots__ = ("src", "seq", "type", "code", "time")

    def __init__(self, src: bytes, seq: int, type: int, code: int, time: int):
        self.src = src
        self.seq = seq
        self.type = type
        self.code = code
        self.time = time

    def describe(self) -> str:
        if self.type == icmp_codec.DEST_UNREACHABLE:
            what = icmp_codec.UNREACH_NAMES.get(self.code, f"unreachable (code {self.code})")
            return f"From {ip_ntoa(self.src)} icmp_seq={self.seq} Destination {what.title()}"
        if self.type == icmp_codec.TIME_EXCEEDED:
            return f"From {ip_ntoa(self.src)} icmp_seq={self.seq} Time to live exceeded"
        return f"From {ip_ntoa(self.src)} icmp_seq={self.seq} ICMP type {self.type} code {self.code}"


class IcmpErrorRecord:
    """One ICMP error as an error-watching socket sees it (what traceroute needs): who sent
    it, type and code, the quoted IP header and the first transport bytes it quotes."""
    __slots__ = ("src", "type", "code", "quoted_ip", "quoted_data", "mtu", "time")

    def __init__(self, src: bytes, type: int, code: int, quoted_ip, quoted_data: bytes,
                 mtu: int, time: int):
        self.src = src
        self.type = type
        self.code = code
        self.quoted_ip = quoted_ip      # IPv4Header of the datagram that caused it
        self.quoted_data = quoted_data  # its first transport bytes (ports, ICMP id/seq)
        self.mtu = mtu
        self.time = time                # when it arrived (ns)


class IcmpErrorSocket:
    """Sees a copy of every ICMP error the host receives (like a raw ICMP socket, or Linux's
    IP_RECVERR): traceroute reads time exceeded and port unreachable from it. Bounded."""

    def __init__(self, layer: "IcmpLayer", queue_limit: int = 1024):
        self.layer = layer
        self.items: deque = deque()
        self.queue_limit = queue_limit
        self.on_event: Callable[[], None] | None = None
        self.closed = False

    def receive(self):
        """The next IcmpErrorRecord, or None."""
        return self.items.popleft() if self.items else None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self in self.layer.error_sockets:
                self.layer.error_sockets.remove(self)

    def _deliver(self, item) -> None:
        if len(self.items) >= self.queue_limit:
            self.layer.counters.incr("icmp.error_queue_overflow")
            return
        self.items.append(item)
        if self.on_event:
            self.on_event()


class PingSocket:
    """Sends echo requests with one identifier and collects the replies (like Linux's
    unprivileged ICMP sockets)."""

    def __init__(self, layer: "IcmpLayer", ident: int, queue_limit: int = 1024):
        self.layer = layer
        self.ident = ident
        self.replies: deque = deque()
        self.queue_limit = queue_limit
        self.on_event: Callable[[], None] | None = None
        self.closed = False

    def send(self, dst, seq: int, payload: bytes = b"", ttl: int | None = None) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        dst = ip_aton(dst)
        if self.layer.route_source(dst) is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        self.layer.outbox.append((dst, self.ident, seq & 0xFFFF, bytes(payload), ttl))

    def receive(self):
        """The next EchoReply or IcmpErrorReport, or None."""
        return self.replies.popleft() if self.replies else None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.layer.ping_sockets.pop(self.ident, None)

    def _deliver(self, item) -> None:
        if len(self.replies) >= self.queue_limit:
            self.layer.counters.incr("icmp.ping_queue_overflow")
            return
        self.replies.append(item)
        if self.on_event:
            self.on_event()


class IcmpLayer:
    def __init__(self, counters, rng, ip_output, route_source, on_error: Callable):
        self.counters = counters
        self.rng = rng
        self.ip_output = ip_output
        self.route_source = route_source
        self.on_error = on_error  # (type, code, mtu, quoted_ip_header, quoted_transport, now)
        self.ping_sockets: dict[int, PingSocket] = {}
        self.error_sockets: list[IcmpErrorSocket] = []
        self.outbox: list = []
        self.answer_echo = True

    def ping_socket(self) -> PingSocket:
        for _ in range(65536):
            ident = self.rng.randrange(1, 65536)
            if ident not in self.ping_sockets:
                sock = self.ping_sockets[ident] = PingSocket(self, ident)
                return sock
        raise OSError(errno.EADDRNOTAVAIL, "no free ICMP identifier")

    def error_socket(self) -> IcmpErrorSocket:
        sock = IcmpErrorSocket(self)
        self.error_sockets.append(sock)
        return sock

    def poll_at(self) -> int | None:
        """DUE_NOW while echo requests wait to be sent; no timers (the Transport contract)."""
        return DUE_NOW if self.outbox else None

    def poll(self, now: int) -> None:
        """Hand queued echo requests to IP (called by the host's transmit)."""
        if not self.outbox:
            return
        out, self.outbox = self.outbox, []
        for dst, ident, seq, payload, ttl in out:
            src = self.route_source(dst)
            if src is None:
                continue
            self.counters.incr("icmp.out_echos")
            self.ip_output(src, dst, 1, icmp_codec.build_echo(True, ident, seq, payload), now,
                           ttl=ttl)

    def report_to_ping(self, reporter: bytes, type_: int, code: int, qdata, now: int) -> None:
        """An ICMP error about one of our echo requests goes to the ping socket that sent it.
        ``reporter`` is who said so: a router, the destination, or this host itself when ARP
        got no answer (iputils then prints "From <own address> ... Host Unreachable")."""
        if len(qdata) < 8 or qdata[0] != icmp_codec.ECHO_REQUEST:
            return
        ident = int.from_bytes(qdata[4:6], "big")
        seq = int.from_bytes(qdata[6:8], "big")
        sock = self.ping_sockets.get(ident)
        if sock is not None:
            sock._deliver(IcmpErrorReport(reporter, seq, type_, code, now))

    def input(self, ip, body, now: int, broadcast: bool) -> None:
        try:
            msg = icmp_codec.parse(body)
        except MalformedPacket as exc:
            self.counters.incr(exc.counter)
            return
        self.counters.incr("icmp.in_msgs")
        t = msg.type
        if t == icmp_codec.ECHO_REQUEST:
            self.counters.incr("icmp.in_echos")
            if not self.answer_echo or broadcast:
                return  # like Linux's icmp_echo_ignore_broadcasts
            # RFC 1122 §3.2.2.6: the reply carries the same identifier, sequence and data.
            reply = icmp_codec.build(icmp_codec.ECHO_REPLY, 0, msg.rest, msg.payload)
            self.counters.incr("icmp.out_echo_reps")
            self.ip_output(ip.dst, ip.src, 1, reply, now)
        elif t == icmp_codec.ECHO_REPLY:
            self.counters.incr("icmp.in_echo_reps")
            sock = self.ping_sockets.get(msg.ident)
            if sock is None:
                self.counters.incr("icmp.in_echo_reps_unmatched")
                return
            sock._deliver(EchoReply(ip.src, msg.seq, ip.ttl, bytes(msg.payload), now, len(body)))
        elif msg.is_error:
            self.counters.incr("icmp.in_dest_unreachs" if t == icmp_codec.DEST_UNREACHABLE
                               else "icmp.in_errors")
            try:
                qhdr, qdata = msg.quoted()
            except MalformedPacket as exc:
                self.counters.incr(exc.counter)
                return
            mtu = msg.next_hop_mtu if (t == icmp_codec.DEST_UNREACHABLE and msg.code == icmp_codec.FRAG_NEEDED) else 0
            if self.error_sockets:
                record = IcmpErrorRecord(ip.src, t, msg.code, qhdr, bytes(qdata[:8]), mtu, now)
                for watcher in self.error_sockets:
                    watcher._deliver(record)
            if qhdr.proto == 1:
                self.report_to_ping(ip.src, t, msg.code, qdata, now)
                return
            self.on_error(t, msg.code, mtu, qhdr, qdata, now)
        else:
            self.counters.incr("icmp.in_unknown_types")
