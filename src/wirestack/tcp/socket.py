"""The application's handle: a non-blocking, BSD-shaped TCP socket.

A socket is only a handle. The connection state (the TCB) lives in the layer; after
``close()`` the connection may linger there (FIN_WAIT_*, TIME_WAIT) without the socket.
Misuse raises Python's own exceptions (OSError with an errno, BrokenPipeError, ...);
errors of the connection itself (reset, refused, timed out) are in ``error`` and raised by
``send``/``recv``.

The calls that change state (``connect``, ``listen``, ``shutdown_write``, ``close``,
``abort``, ``set_option``) take the time they act at as ``now`` (int ns); without it they
act at the time the layer last saw (its latest input or poll).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..wire.addr import ANY_IP, ip_aton, ip_ntoa
from ..wire.bytes_like import BytesLike
from .config import TcpConfig
from .listener import Listener
from .states import CLOSE_WAIT, CLOSED, ESTABLISHED, LISTEN, SYN_RECEIVED, SYN_SENT, State

if TYPE_CHECKING:
    from .connection import Connection
    from .layer import TcpLayer

_SEND_OK = frozenset({SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT})


def _addr(addr: object) -> tuple[bytes, int]:
    try:
        ip, port = cast("tuple[Any, Any]", addr)    # any pair; checked below
    except (TypeError, ValueError):
        raise OSError(errno.EINVAL, "address must be an (ip, port) pair") from None
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OSError(errno.EINVAL, f"bad port {port!r}")
    try:
        return ip_aton(ip or "0.0.0.0"), port
    except ValueError as e:
        raise OSError(errno.EINVAL, str(e)) from None


class TcpSocket:
    __slots__ = ("_layer", "_cfg", "_conn", "_bind_ip", "_port", "_listener", "_closed",
                 "_error", "on_event", "__weakref__")

    def __init__(self, layer: TcpLayer, cfg: TcpConfig, conn: Connection | None = None) -> None:
        self._layer = layer
        self._cfg = cfg
        self._conn = conn         # the connection (TCB), once connecting or accepted
        self._bind_ip: bytes | None = None     # once bound
        self._port = 0
        self._listener: Listener | None = None   # once listening
        self._closed = False
        self._error: OSError | None = None
        self.on_event: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<TcpSocket {self.local}>{self.remote} {self.state}>"

    # ------------------------------------------------------------------ properties
    @property
    def state(self) -> State:
        if self._listener is not None:
            return LISTEN
        if self._conn is not None:
            return self._conn.state
        return CLOSED

    @property
    def error(self) -> OSError | None:
        if self._conn is not None and self._conn.error is not None:
            return self._conn.error
        return self._error

    @property
    def local(self) -> tuple[str, int]:
        c = self._conn
        if c is not None:
            return ip_ntoa(c.lip), c.lport
        if self._bind_ip is not None:
            return ip_ntoa(self._bind_ip), self._port
        return "0.0.0.0", 0

    @property
    def remote(self) -> tuple[str, int] | None:
        c = self._conn
        return (ip_ntoa(c.rip), c.rport) if c is not None else None

    @property
    def options(self) -> TcpConfig:
        """The socket's TcpConfig (host defaults with this socket's overrides)."""
        return self._cfg

    def set_option(self, now: int | None = None, **changes: Any) -> None:
        """Change per-socket options, e.g. ``set_option(nodelay=True)``; on a connection
        the switches take effect at once."""
        layer = self._layer
        if now is None:
            now = layer.now
        if "congestion_control" in changes:
            from . import congestion
            congestion.get(changes["congestion_control"])
        self._cfg = self._cfg.replace(**changes)
        if self._listener is not None:
            self._listener.cfg = self._cfg
        if self._conn is not None:
            self._conn.apply_options(self._cfg, changes, now)

    @property
    def nodelay(self) -> bool:
        return self._cfg.nodelay

    @nodelay.setter
    def nodelay(self, value: bool) -> None:
        self.set_option(nodelay=bool(value))

    # ------------------------------------------------------------------ setup
    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor (socket is closed)")

    def bind(self, addr: object) -> None:
        self._check_open()
        if self._bind_ip is not None or self._conn is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        ip, port = _addr(addr)
        layer = self._layer
        if ip != ANY_IP and layer.route_source(ip) != ip:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        self._port = layer.bind(self, ip, port)
        self._bind_ip = ip

    def listen(self, backlog: int = 128, now: int | None = None) -> None:
        self._check_open()
        if self._conn is not None:
            raise OSError(errno.EINVAL, "socket is connected")
        backlog = max(1, min(int(backlog), self._cfg.backlog_max))
        if self._listener is not None:
            self._listener.backlog = backlog
            return
        if self._bind_ip is None:
            self.bind(("0.0.0.0", 0))
        ip = self._bind_ip or ANY_IP
        layer = self._layer
        if now is None:
            now = layer.now
        self._listener = Listener(layer, self, self._cfg, ip, self._port, backlog)
        layer.add_listener(self._listener)
        if layer.log.enabled:
            layer.log.record(now, "state", conn=f"{ip_ntoa(ip)}:{self._port}>*",
                             old=CLOSED, new=LISTEN, seq=0, ack=0)

    def connect(self, addr: object, now: int | None = None) -> None:
        """Start the three-way handshake (non-blocking: the SYN leaves at the next poll;
        ``on_event`` fires when the state becomes ESTABLISHED or ``error`` is set)."""
        self._check_open()
        if self._listener is not None:
            raise OSError(errno.EINVAL, "socket is listening")
        if self._conn is not None:
            raise OSError(errno.EISCONN, "socket is already connected")
        rip, rport = _addr(addr)
        if rport == 0 or rip == ANY_IP:
            raise OSError(errno.EINVAL, "cannot connect to port 0 or 0.0.0.0")
        layer = self._layer
        lip = self._bind_ip
        if lip is None or lip == ANY_IP:
            lip = layer.route_source(rip)
            if lip is None:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
        if self._bind_ip is None:
            self._port = layer.bind_for_connect(self, lip, rip, rport)
            self._bind_ip = ANY_IP
        elif layer.in_use((lip, self._port, rip, rport)):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        if now is None:
            now = layer.now
        from .connection import Connection
        conn = Connection(layer, self._cfg, lip, self._port, rip, rport, now)
        conn.sock = self
        self._conn = conn
        layer.add(conn)
        layer.counters.incr("tcp.active_opens")
        conn.open_active(now)

    def accept(self) -> TcpSocket | None:
        """A connected socket from the accept queue, or None when it is empty."""
        self._check_open()
        if self._listener is None:
            raise OSError(errno.EINVAL, "socket is not listening")
        conn = self._listener.accept()
        if conn is None:
            return None
        s = TcpSocket(self._layer, conn.cfg, conn)
        conn.sock = s
        if conn.error is not None or conn.state is CLOSED:
            pass
        elif conn.rcvq or conn.fin_rcvd:
            conn.notify()   # data (or EOF) arrived before accept: readable at once
        return s

    # ------------------------------------------------------------------ data
    def send(self, data: BytesLike) -> int:
        """Queue bytes; returns how many fit in the send buffer (0 when it is full)."""
        self._check_open()
        conn = self._conn
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        if conn.error is not None:
            raise conn.error
        if conn.fin_queued:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe (send after shutdown)")
        if conn.state not in _SEND_OK:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        return conn.queue_send(data)

    def recv(self, n: int = 65536) -> bytes:
        """Up to n bytes; b"" at end of stream; BlockingIOError when nothing is there yet."""
        self._check_open()
        conn = self._conn
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        if conn.rcvq:
            return conn.read(n)
        if conn.error is not None:
            raise conn.error
        if conn.fin_rcvd or conn.state is CLOSED:
            return b""
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    @property
    def readable(self) -> int:
        """Bytes ready to recv()."""
        return len(self._conn.rcvq) if self._conn is not None else 0

    @property
    def recv_ready(self) -> bool:
        """Whether recv() returns now -- data, b"" at the end of the stream, or raises the
        connection's error -- rather than BlockingIOError: select()'s "readable"."""
        conn = self._conn
        if conn is None or self._closed:
            return True                  # recv() raises at once (ENOTCONN, EBADF)
        return bool(conn.rcvq) or conn.error is not None or conn.fin_rcvd or conn.state is CLOSED

    @property
    def writable(self) -> int:
        """Free space in the send buffer."""
        c = self._conn
        return c.sndq.free if c is not None and not c.fin_queued else 0

    @property
    def unsent(self) -> int:
        """Bytes in the send buffer not yet acknowledged."""
        return len(self._conn.sndq) if self._conn is not None else 0

    # ------------------------------------------------------------------ teardown
    def shutdown_write(self, now: int | None = None) -> None:
        """Half-close: our FIN follows the queued data; we can still receive."""
        self._check_open()
        conn = self._conn
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        if conn.state is CLOSED:
            if conn.error is not None:
                raise conn.error
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        conn.shutdown_write(self._layer.now if now is None else now)

    def close(self, now: int | None = None) -> None:
        """Let go. Unread data -> RST; else FIN after the queued data, and the connection
        finishes inside the layer (RFC 9293 §3.10.4)."""
        if self._closed:
            return
        self._closed = True
        layer = self._layer
        if now is None:
            now = layer.now
        lst = self._listener
        if lst is not None:
            self._listener = None
            layer.remove_listener(lst)
            if layer.log.enabled:
                layer.log.record(now, "state", conn=f"{ip_ntoa(lst.ip)}:{lst.port}>*",
                                 old=LISTEN, new=CLOSED, seq=0, ack=0)
            lst.close(now)     # connections nobody will accept are reset
        if self._bind_ip is not None:
            layer.unbind(self, self._port)
        conn = self._conn
        if conn is not None:
            if conn.sock is self:
                conn.close(now)
        self.on_event = None

    def abort(self, now: int | None = None) -> None:
        """Reset the connection now (RFC 9293 §3.10.5) and close the socket."""
        if now is None:
            now = self._layer.now
        conn = self._conn
        if conn is not None and not self._closed:
            conn.sock = None
            conn.detached = True
            conn.abort(now)
        self.close(now)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict[str, Any]:
        c = self._conn
        lst = self._listener
        if lst is not None:
            return lst.stats()
        if c is None:
            return {"state": self.state}
        return c.stats()
