"""asyncio-shaped protocols over wirestack's TCP sockets: ``create_server(protocol_factory, ...)``.

asyncio offers two ways to write a server: streams (``start_server``: a coroutine per
connection that awaits ``reader.read()``) and protocols (``loop.create_server``: an object
whose ``data_received`` is called with each piece of data). Streams read like blocking code;
protocols cost less per message, because nothing has to be woken up. Here that difference
is large: the host calls a socket's ``on_event`` from inside its poll, right after the
segment was processed, so a protocol's ``data_received`` runs there and a reply it writes
leaves in the same poll -- one loop turn per request instead of two (the task that a
stream would wake runs only in the loop's next iteration).

The shapes follow asyncio: ``connection_made(transport)``, ``data_received(data)``,
``eof_received()`` (a false result closes the transport once what was written is sent),
``connection_lost(exc)``, and flow control both ways -- ``pause_writing()`` /
``resume_writing()`` when more than ``HIGH_WATER`` bytes wait above the socket's send buffer
(until at most ``LOW_WATER`` do), and ``transport.pause_reading()`` / ``resume_reading()``
(data then stays in the socket's receive buffer and the advertised window closes, RFC 9293
§3.8.6). Memory stays bounded as long as a protocol honours ``pause_writing``.
"""

from __future__ import annotations

from typing import Any, Callable

from .streams import HIGH_WATER, LOW_WATER, Server, server_address, socket_extra_info

CHUNK = 64 * 1024     # bytes taken from the socket per data_received call at most


class TcpTransport:
    """The transport handed to a protocol's ``connection_made`` (asyncio.Transport's shape)."""

    def __init__(self, runtime, sock, protocol) -> None:
        self._rt = runtime
        self._sock = sock
        self._protocol = protocol
        self._pending = bytearray()      # written, not yet taken by the socket's send buffer
        self._closing = False            # close() called: FIN once _pending is in the socket
        self._eof_written = False        # write_eof() called
        self._shut = False               # the socket was shut down for writing / closed
        self._eof_seen = False
        self._reading_paused = False
        self._writing_paused = False
        self._lost = False
        sock.on_event = self._on_event

    # -- writing ------------------------------------------------------------------------
    def write(self, data) -> None:
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._closing or self._lost or not data:
            return                       # as asyncio: writes after close() are dropped
        if self._pending:
            self._pending += data
        else:
            try:
                n = self._sock.send(data)
            except OSError as exc:
                self._connection_lost(exc)
                return
            if n < len(data):
                self._pending += memoryview(data)[n:]
            if n:
                self._rt.kick()
        if not self._writing_paused and len(self._pending) > HIGH_WATER:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._eof_written:
            self._eof_written = True
            self._flush()

    # -- reading ------------------------------------------------------------------------
    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._rt.loop.call_soon(self._on_event)    # what arrived meanwhile

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    # -- ending -------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._flush()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def abort(self) -> None:
        self._abort(None)

    def _abort(self, exc: Exception | None) -> None:
        """Reset the connection (RFC 9293 §3.10.5); the protocol hears ``exc``."""
        self._pending.clear()
        self._closing = True
        if not self._lost:
            self._sock.abort(now=self._rt.now_ns())
            self._rt.kick()
            self._connection_lost(exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return socket_extra_info(self._sock, name, default)

    # -- the socket's events ------------------------------------------------------------
    def _flush(self) -> None:
        """Move pending bytes into the socket; then the FIN or the close asked for."""
        sock = self._sock
        if self._pending:
            try:
                n = sock.send(self._pending)
            except OSError as exc:
                self._connection_lost(exc)
                return
            if n:
                del self._pending[:n]
                self._rt.kick()
            if self._writing_paused and len(self._pending) <= LOW_WATER:
                self._writing_paused = False
                self._call(self._protocol.resume_writing)
        if self._pending or self._shut or self._lost:
            return
        if self._closing:
            self._shut = True
            sock.close(now=self._rt.now_ns())       # FIN after the data (or RST if unread)
            self._rt.kick()
            self._connection_lost(None)
        elif self._eof_written:
            self._shut = True
            try:
                sock.shutdown_write(now=self._rt.now_ns())
            except OSError as exc:
                self._connection_lost(exc)
                return
            self._rt.kick()

    def _on_event(self) -> None:
        if self._lost:
            return
        if self._pending or self._closing or self._eof_written:
            self._flush()
            if self._lost:
                return
        sock = self._sock
        if not self._reading_paused and not self._eof_seen and not self._closing:
            protocol = self._protocol
            took = False
            # (recv_ready: recv() returns or raises the connection's error, never blocks)
            while not self._reading_paused and not self._closing and sock.recv_ready:
                try:
                    data = sock.recv(CHUNK)
                except OSError as exc:
                    self._connection_lost(exc)
                    return
                took = True
                if not data:
                    self._eof_seen = True
                    if not self._call(protocol.eof_received):
                        self.close()
                    break
                self._call(protocol.data_received, data)
                if self._lost:
                    return
            if took:
                self._rt.kick()              # a window update may be due
        if not self._lost and sock.error is not None:
            self._connection_lost(sock.error)

    def _call(self, callback, *args):
        """Run a protocol callback. It runs inside the host's poll, so an exception must not
        escape into the stack: as asyncio does ("Fatal error: protocol.data_received() call
        failed"), it goes to the loop's exception handler and the connection is reset."""
        try:
            return callback(*args)
        except Exception as exc:
            self._rt.loop.call_exception_handler({
                "message": f"Fatal error: protocol.{callback.__name__}() call failed.",
                "exception": exc, "transport": self, "protocol": self._protocol})
            self._abort(exc)
            return None

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._pending.clear()
        if not self._shut:
            self._shut = True
            self._sock.close(now=self._rt.now_ns())
            self._rt.kick()
        # asyncio never calls connection_lost from inside another callback of the transport
        self._rt.loop.call_soon(self._protocol.connection_lost, exc)


class ProtocolServer(Server):
    """What ``create_server`` returns (asyncio.Server's shape): a listening socket that
    makes a protocol and a transport for every accepted connection."""

    def _serve(self, conn_sock) -> None:
        """An accepted connection: a protocol and its transport (the accept loop is Server's)."""
        protocol: Any = self.callback()
        transport = TcpTransport(self.runtime, conn_sock, protocol)
        transport._call(protocol.connection_made, transport)
        # (data that came with the handshake: accept() has the socket notified)


async def create_server(runtime, protocol_factory: Callable[[], Any],
                        host: str | int | None = None, port: int | str | None = None, *,
                        backlog: int = 128, **sockopts) -> ProtocolServer:
    """Listen on ``(host, port)`` and serve each connection with ``protocol_factory()``,
    like ``loop.create_server``."""
    ip, port = server_address(host, port)
    sock = runtime.host.tcp_socket(**sockopts)
    try:
        sock.bind((ip, port))
        sock.listen(backlog, now=runtime.now_ns())
    except OSError:
        sock.close()
        raise
    return ProtocolServer(runtime, sock, protocol_factory)

