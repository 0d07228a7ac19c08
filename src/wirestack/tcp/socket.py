"""The application's handle: a non-blocking, BSD-shaped TCP socket.

A socket is only a handle. The connection state (the TCB) lives in the layer; after
``close()`` the connection may linger there (FIN_WAIT_*, TIME_WAIT) without the socket.
Misuse raises Python's own exceptions (OSError with an errno, BrokenPipeError, ...);
errors of the connection itself (reset, refused, timed out) are in ``error`` and raised by
``send``/``recv``.
"""

from __future__ import annotations

import errno

from ..wire.addr import ANY_IP, ip_aton, ip_ntoa
from .states import CLOSE_WAIT, CLOSED, ESTABLISHED, LISTEN, SYN_RECEIVED, SYN_SENT

_SEND_OK = frozenset({SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT})


def _addr(addr) -> tuple[bytes, int]:
    try:
        ip, port = addr
    except (TypeError, ValueError):
        raise OSError(errno.EINVAL, "address must be an (ip, port) pair") from None
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OSError(errno.EINVAL, f"bad port {port!r}")
    try:
        return ip_aton(ip or "0.0.0.0"), port
    except ValueError as e:
        raise OSError(errno.EINVAL, str(e)) from None


class TcpSocket:
    __slots__ = ("_layer", "_cfg", "_conn", "_bind_ip", "_port", "_listening", "_backlog",
                 "_acceptq", "_children", "_closed", "_error", "on_event", "_ev", "_cookie_until",
                 "__weakref__")

    def __init__(self, layer, cfg):
        self._layer = layer
        self._cfg = cfg
        self._conn = None
        self._bind_ip = None      # bytes once bound
        self._port = 0
        self._listening = False
        self._backlog = 0
        self._acceptq = None
        self._children = None
        self._closed = False
        self._error = None
        self.on_event = None
        self._ev = False
        self._cookie_until = -1   # SYN cookies are accepted until then (after sending one)

    def __repr__(self) -> str:
        return f"<TcpSocket {self.local}>{self.remote} {self.state}>"

    # ------------------------------------------------------------------ properties
    @property
    def state(self) -> str:
        if self._listening:
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
    def options(self):
        """The socket's TcpConfig (host defaults with this socket's overrides)."""
        return self._cfg

    def set_option(self, **changes) -> None:
        """Change per-socket options, e.g. ``set_option(nodelay=True)``; on a connection
        the switches take effect at once."""
        if "congestion_control" in changes:
            from . import congestion
            congestion.get(changes["congestion_control"])
        self._cfg = self._cfg.replace(**changes)
        c = self._conn
        if c is not None:
            c.cfg = self._cfg
            c.nodelay = self._cfg.nodelay
            if "keepalive" in changes or "keepalive_idle" in changes:
                c.arm_keepalive(self._layer._now)
                self._layer._schedule(c)
            if "user_timeout" in changes:
                c.user_timeout = self._cfg.user_timeout
            if "congestion_control" in changes:
                from . import congestion
                old = c.cc
                c.cc = congestion.get(self._cfg.congestion_control)(c.snd_mss, self._cfg.initial_window)
                if old.cwnd < (1 << 60) and c.cc.cwnd < (1 << 60):
                    c.cc.cwnd, c.cc.ssthresh = old.cwnd, old.ssthresh
            c._want_output()

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

    def bind(self, addr) -> None:
        self._check_open()
        if self._bind_ip is not None or self._conn is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        ip, port = _addr(addr)
        layer = self._layer
        if ip != ANY_IP and layer.route_source(ip) != ip:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        self._port = layer._bind(self, ip, port)
        self._bind_ip = ip

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._conn is not None:
            raise OSError(errno.EINVAL, "socket is connected")
        backlog = max(1, min(int(backlog), self._cfg.backlog_max))
        if self._listening:
            self._backlog = backlog
            return
        if self._bind_ip is None:
            self.bind(("0.0.0.0", 0))
        from ..storage import BoundedQueue
        self._listening = True
        self._backlog = backlog
        self._acceptq = BoundedQueue(backlog)
        self._children = set()
        layer = self._layer
        layer._listeners[(self._bind_ip, self._port)] = self
        if layer.log.enabled:
            layer.log.record(layer._now, "state", conn=f"{ip_ntoa(self._bind_ip)}:{self._port}>*",
                             old=CLOSED, new=LISTEN, seq=0, ack=0)

    def connect(self, addr) -> None:
        """Start the three-way handshake (non-blocking: the SYN leaves at the next poll;
        ``on_event`` fires when the state becomes ESTABLISHED or ``error`` is set)."""
        self._check_open()
        if self._listening:
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
            port = layer._ephemeral(lip, rip, rport)
            layer._bound.setdefault(port, []).append(self)
            self._bind_ip = ANY_IP
            self._port = port
        elif (lip, self._port, rip, rport) in layer._conns:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        from .connection import Connection
        conn = Connection(layer, self._cfg, lip, self._port, rip, rport, layer._now)
        conn.sock = self  # type: ignore[assignment]  # connection.py declares sock as None
        self._conn = conn
        layer._add(conn)
        layer.counters.incr("tcp.active_opens")
        conn.open_active(layer._now)

    def accept(self):
        """A connected socket from the accept queue, or None when it is empty."""
        self._check_open()
        if not self._listening:
            raise OSError(errno.EINVAL, "socket is not listening")
        conn = self._acceptq.get()
        if conn is None:
            return None
        s = TcpSocket(self._layer, conn.cfg)
        s._conn = conn
        conn.sock = s
        conn.listener = None
        if conn.error is not None or conn.state is CLOSED:
            pass
        elif conn.rcvq or conn.fin_rcvd:
            conn._notify()   # data (or EOF) arrived before accept: readable at once
        return s

    # ------------------------------------------------------------------ data
    def send(self, data) -> int:
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
        n = conn.sndq.append(data)
        if n:
            conn._want_output()
        return n

    def recv(self, n: int = 65536) -> bytes:
        """Up to n bytes; b"" at end of stream; BlockingIOError when nothing is there yet."""
        self._check_open()
        conn = self._conn
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        q = conn.rcvq
        if q:
            data = q.read(n)
            conn.after_read()
            return data
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
    def writable(self) -> int:
        """Free space in the send buffer."""
        c = self._conn
        return c.sndq.free if c is not None and not c.fin_queued else 0

    @property
    def unsent(self) -> int:
        """Bytes in the send buffer not yet acknowledged."""
        return len(self._conn.sndq) if self._conn is not None else 0

    # ------------------------------------------------------------------ teardown
    def shutdown_write(self) -> None:
        """Half-close: our FIN follows the queued data; we can still receive."""
        self._check_open()
        conn = self._conn
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        if conn.state is CLOSED:
            if conn.error is not None:
                raise conn.error
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        conn.shutdown_write()

    def close(self) -> None:
        """Let go. Unread data -> RST; else FIN after the queued data, and the connection
        finishes inside the layer (RFC 9293 §3.10.4)."""
        if self._closed:
            return
        self._closed = True
        layer = self._layer
        if self._listening:
            self._listening = False
            layer._listeners.pop((self._bind_ip, self._port), None)
            if layer.log.enabled:
                layer.log.record(layer._now, "state", conn=f"{ip_ntoa(self._bind_ip)}:{self._port}>*",
                                 old=LISTEN, new=CLOSED, seq=0, ack=0)
            # Connections nobody will accept are reset.
            for conn in list(self._children) + self._acceptq.clear():
                conn.listener = None
                conn.detached = True
                conn.abort(layer._now)
            self._children.clear()
        if self._bind_ip is not None:
            layer._unbind(self, self._port)
        conn = self._conn
        if conn is not None:
            if conn.sock is self:
                conn.close()
        self.on_event = None

    def abort(self) -> None:
        """Reset the connection now (RFC 9293 §3.10.5) and close the socket."""
        conn = self._conn
        if conn is not None and not self._closed:
            conn.sock = None
            conn.detached = True
            conn.abort(self._layer._now)
        self.close()

    # ------------------------------------------------------------------ listener side
    def _child_established(self, conn) -> None:
        self._children.discard(conn)
        if self._acceptq.put(conn):
            if not self._ev:
                self._ev = True
                self._layer._notify.append(self)
        else:   # cannot happen: children + queue <= backlog was checked at SYN time
            self._layer.counters.incr("tcp.listen_overflow")
            conn.listener = None
            conn.abort(self._layer._now)

    def _child_gone(self, conn) -> None:
        if self._children is not None:
            self._children.discard(conn)
        if self._acceptq is not None:
            self._acceptq.remove(conn)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict:
        c = self._conn
        if c is None:
            return {"state": self.state}
        r = c.rtt
        return {
            "state": c.state,
            "segments_in": c.segs_in, "segments_out": c.segs_out,
            "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
            "retransmits": c.retransmits, "dup_acks": c.dupacks_rcvd,
            "rtt_samples": r.samples, "srtt": r.srtt, "rttvar": r.rttvar, "rto": r.rto,
            "last_rtt": r.last_sample, "backoff": r.backoff,
            "cwnd": c.cc.cwnd, "ssthresh": c.cc.ssthresh, "congestion_control": c.cc.name,
            "in_recovery": c.in_recovery,
            "snd_wnd": c.snd_wnd, "rcv_wnd": max(0, c.rcv_adv - c.rcv_nxt),
            "snd_mss": c.snd_mss, "peer_mss": c.peer_mss,
            "window_scaling": c.ws_ok, "snd_wscale": c.snd_wscale, "rcv_wscale": c.rcv_wscale,
            "timestamps": c.ts_ok, "sack": c.sack_ok,
            "sacked_bytes": c.sb.sacked if c.sb is not None else 0,
            "unacked": c.snd_max - c.snd_una, "send_queue": len(c.sndq),
            "recv_queue": len(c.rcvq), "ooo_bytes": c.asm.nbytes if c.asm is not None else 0,
        }
