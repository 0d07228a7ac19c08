"""UDP (RFC 768) sockets on a sans-I/O host: bind, connect, sendto, recvfrom.

Sending is deferred: ``sendto`` checks what it can check at once (address, size, route) and
queues the datagram; the host hands it to IP on its next ``transmit(now)``, because only
then does it know the time (for ARP timers) — the core never reads a clock.
"""

from __future__ import annotations

import errno
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..contracts import DUE_NOW
from ..wire import udp as udp_codec
from ..wire.bytes_like import BytesLike
from ..wire.addr import ANY_IP, BROADCAST_IP, ip_aton, ip_ntoa
from ..wire.errors import MalformedPacket

if TYPE_CHECKING:
    import random

    from ..trace.counters import Counters

EPHEMERAL_LOW, EPHEMERAL_HIGH = 49152, 65535
MAX_PAYLOAD = 65535 - 20 - 8

Address = tuple[str | bytes, int]   # what the API accepts: ("198.18.0.1", 7)


class IpOutput(Protocol):
    """The host's IPv4 output: ``ttl`` None means the host's default TTL."""

    def __call__(self, src: bytes, dst: bytes, proto: int, payload: bytes, now: int,
                 ttl: int | None = None) -> object: ...


def _addr(address: Any) -> tuple[bytes, int]:
    try:
        host, port = address
    except (TypeError, ValueError):
        raise TypeError("address must be a (host, port) tuple") from None
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OverflowError("port must be 0-65535.")
    try:
        return ip_aton(host or "0.0.0.0"), port
    except ValueError as exc:
        raise OSError(errno.EINVAL, str(exc)) from None


class UdpSocket:
    def __init__(self, layer: "UdpLayer", rcvbuf_datagrams: int = 256):
        self.layer = layer
        self.local: tuple[bytes, int] | None = None
        self.remote: tuple[bytes, int] | None = None
        self.queue: deque[tuple[bytes, bytes, int]] = deque()   # (data, src, sport)
        self.rcvbuf_datagrams = rcvbuf_datagrams
        self.error: OSError | None = None
        self.closed = False
        self.on_event: Callable[[], None] | None = None
        self.ttl: int | None = None   # IP_TTL: None = the host's default (traceroute sets it)

    # -- API ---------------------------------------------------------------------------
    def bind(self, address: Address) -> None:
        self._check_open()
        if self.local is not None:
            raise OSError(errno.EINVAL, "Invalid argument: socket already bound")
        ip, port = _addr(address)
        self.layer._bind(self, ip, port)

    def connect(self, address: Address) -> None:
        self._check_open()
        ip, port = _addr(address)
        if port == 0:
            raise OSError(errno.EINVAL, "Invalid argument: port 0")
        if self.local is None:
            self.layer._bind(self, ANY_IP, 0)
        self.remote = (ip, port)

    def sendto(self, data: BytesLike, address: Address) -> int:
        self._check_open()
        ip, port = _addr(address)
        return self._send(bytes(data), ip, port)

    def send(self, data: BytesLike) -> int:
        self._check_open()
        if self.remote is None:
            raise OSError(errno.EDESTADDRREQ, "Destination address required")
        return self._send(bytes(data), *self.remote)

    def recvfrom(self, bufsize: int = 65535) -> tuple[bytes, tuple[str, int]]:
        self._check_open()
        self._raise_pending_error()
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, src, sport = self.queue.popleft()
        return data[:bufsize], (ip_ntoa(src), sport)

    def recv(self, bufsize: int = 65535) -> bytes:
        return self.recvfrom(bufsize)[0]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.layer._unbind(self)
            self.queue.clear()

    def getsockname(self) -> tuple[str, int]:
        ip, port = self.local or (ANY_IP, 0)
        return ip_ntoa(ip), port

    @property
    def readable(self) -> bool:
        return bool(self.queue) or self.error is not None

    # -- internals ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")

    def _raise_pending_error(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def _send(self, data: bytes, ip: bytes, port: int) -> int:
        if port == 0:
            raise OSError(errno.EINVAL, "Invalid argument: port 0")
        if len(data) > MAX_PAYLOAD:
            raise OSError(errno.EMSGSIZE, "Message too long")
        self._raise_pending_error()
        if self.local is None:
            self.layer._bind(self, ANY_IP, 0)
        if ip != BROADCAST_IP and self.layer.route_source(ip) is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        self.layer.outbox.append((self, data, ip, port, self.ttl))
        return len(data)

    def _deliver(self, data: bytes, src: bytes, sport: int) -> None:
        if len(self.queue) >= self.rcvbuf_datagrams:
            self.layer.counters.incr("udp.rcvbuf_errors")
            return
        self.queue.append((data, src, sport))
        if self.on_event:
            self.on_event()

    def _set_error(self, err: OSError) -> None:
        self.error = err
        if self.on_event:
            self.on_event()


class UdpLayer:
    """Demultiplexes UDP datagrams to sockets and sends port unreachable for closed ports."""

    def __init__(self, counters: Counters, rng: random.Random, ip_output: IpOutput,
                 route_source: Callable[[bytes], bytes | None],
                 send_icmp_port_unreachable: Callable[[BytesLike, int], None]):
        self.counters = counters
        self.rng = rng
        self.ip_output = ip_output
        self.route_source = route_source
        self._port_unreachable = send_icmp_port_unreachable
        self.sockets: dict[tuple[bytes, int], UdpSocket] = {}
        # (sock, data, dst, dport, ttl): the TTL is the socket's IP_TTL when it was queued
        self.outbox: list[tuple[UdpSocket, bytes, bytes, int, int | None]] = []

    def socket(self, **options: int) -> UdpSocket:
        return UdpSocket(self, **options)

    def _bind(self, sock: UdpSocket, ip: bytes, port: int) -> None:
        if port == 0:
            port = self._ephemeral(ip)
        elif (ip, port) in self.sockets or (ANY_IP, port) in self.sockets or (
                ip == ANY_IP and any(p == port for _, p in self.sockets)):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        sock.local = (ip, port)
        self.sockets[(ip, port)] = sock

    def _unbind(self, sock: UdpSocket) -> None:
        if sock.local is not None and self.sockets.get(sock.local) is sock:
            del self.sockets[sock.local]

    def _ephemeral(self, ip: bytes) -> int:
        used = {p for _, p in self.sockets}
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        start = self.rng.randrange(span)
        for i in range(span):
            port = EPHEMERAL_LOW + (start + i) % span
            if port not in used:
                return port
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    def poll_at(self) -> int | None:
        """DUE_NOW while datagrams wait to be sent; UDP has no timers (the Transport contract)."""
        return DUE_NOW if self.outbox else None

    def poll(self, now: int) -> None:
        """Hand queued datagrams to IP (called by the host's transmit)."""
        if not self.outbox:
            return
        out, self.outbox = self.outbox, []
        for sock, data, dst, dport, ttl in out:
            assert sock.local is not None  # _send binds before queueing
            src = sock.local[0]
            if src == ANY_IP:
                routed = self.route_source(dst)
                if routed is None:
                    self.counters.incr("udp.out_no_route")
                    continue
                src = routed
            datagram = udp_codec.build(src, dst, sock.local[1], dport, data)
            self.counters.incr("udp.out_datagrams")
            self.ip_output(src, dst, udp_codec.PROTO, datagram, now, ttl=ttl)

    def input(self, src: bytes, dst: bytes, body: BytesLike, ip_datagram: BytesLike, now: int,
              broadcast: bool) -> None:
        try:
            hdr, payload = udp_codec.parse(body, src, dst)
        except MalformedPacket as exc:
            self.counters.incr(exc.counter)
            return
        sock = self.sockets.get((dst, hdr.dport)) or self.sockets.get((ANY_IP, hdr.dport))
        if sock is not None and sock.remote is not None and sock.remote != (src, hdr.sport):
            sock = None  # a connected socket only hears from its peer
        if sock is None:
            self.counters.incr("udp.no_ports")
            if not broadcast:
                # RFC 1122 §4.1.3.1: SHOULD send ICMP port unreachable.
                self._port_unreachable(ip_datagram, now)
            return
        self.counters.incr("udp.in_datagrams")
        sock._deliver(bytes(payload), src, hdr.sport)

    def icmp_error(self, err: OSError, src: bytes, sport: int, dst: bytes, dport: int) -> None:
        """An ICMP error quoted a datagram we sent from (src, sport) to (dst, dport)."""
        sock = self.sockets.get((src, sport)) or self.sockets.get((ANY_IP, sport))
        if sock is None:
            return
        if sock.remote is not None and sock.remote != (dst, dport):
            return
        sock._set_error(err)

    def has_pending(self) -> bool:
        return bool(self.outbox)
