"""asyncio-shaped streams over wirestack's sans-I/O TCP sockets.

The shapes follow ``asyncio.open_connection`` / ``asyncio.start_server``: a reader with
``read``, ``readexactly``, ``readline``, ``readuntil``, ``at_eof``, and a writer with
``write``, ``drain``, ``write_eof``, ``close``, ``wait_closed``, ``get_extra_info``. So an
application written for asyncio runs on a simulated wire or on a TAP device unchanged.

They work the same on both runtimes: the runtime gives them a ``kick`` (ask the host to
send what is pending soon) and a ``wake`` (tell the loop an application became runnable).
"""

from __future__ import annotations

import asyncio
import errno
from typing import Awaitable, Callable

HIGH_WATER = 256 * 1024   # drain() waits while more than this is buffered above the socket
LOW_WATER = 64 * 1024


class _Waiters:
    """Futures waiting for a core socket's on_event."""

    __slots__ = ("runtime", "futures")

    def __init__(self, runtime):
        self.runtime = runtime
        self.futures: list[asyncio.Future] = []

    def wait(self) -> asyncio.Future:
        fut = self.runtime.loop.create_future()
        self.futures.append(fut)
        return fut

    def fire(self) -> None:
        if not self.futures:
            return
        futures, self.futures = self.futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(None)
        self.runtime.wake()


class StreamState:
    """What a StreamReader and its StreamWriter share about their TcpSocket: bytes written
    but not yet taken by the socket, pending EOF/close, and who waits for the socket.
    (The TCP connection itself is ``wirestack.tcp.connection.Connection``.)"""

    def __init__(self, runtime, sock):
        self.runtime = runtime
        self.sock = sock
        self.waiters = _Waiters(runtime)
        self.pending = bytearray()       # written by the app, not yet in the socket buffer
        self.closing = False
        self.socket_closed = False
        self.eof_requested = False
        sock.on_event = self._on_event

    def _on_event(self) -> None:
        if self.pending or self.closing or self.eof_requested:
            self._push()
        self.waiters.fire()

    def _push(self) -> None:
        """Move pending bytes into the socket's send buffer, as much as fits."""
        sock = self.sock
        if self.pending:
            try:
                n = sock.send(self.pending)
            except OSError:
                self.pending.clear()
                return
            if n:
                del self.pending[:n]
                self.runtime.kick()
        if not self.pending:
            if self.eof_requested and not self.closing:
                self.eof_requested = False
                try:
                    sock.shutdown_write(now=self.runtime.now_ns())
                except OSError:
                    pass
                self.runtime.kick()
            if self.closing and not self.socket_closed:
                self.socket_closed = True
                try:
                    sock.close(now=self.runtime.now_ns())
                except OSError:
                    pass
                self.runtime.kick()


class StreamReader:
    def __init__(self, conn: StreamState):
        self._conn = conn
        self._buffer = bytearray()   # bytes taken from the socket that the app has not consumed
        self._eof = False

    async def _fill(self, n: int = 65536) -> bool:
        """Pull at least one chunk from the socket; False at EOF."""
        sock = self._conn.sock
        while True:
            if not sock.recv_ready:          # (rather than catching recv's BlockingIOError)
                await self._conn.waiters.wait()
                continue
            data = sock.recv(n)
            if not data:
                self._eof = True
                return False
            self._buffer += data
            self._conn.runtime.kick()  # a window update may be due
            return True

    async def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if n < 0:
            while await self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        if not self._buffer and not self._eof:
            await self._fill(max(n, 1))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._eof or not await self._fill(max(n - len(self._buffer), 65536)):
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n", limit: int = 65536) -> bytes:
        start = 0
        while True:
            i = self._buffer.find(separator, start)
            if i >= 0:
                end = i + len(separator)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            if len(self._buffer) > limit:
                raise asyncio.LimitOverrunError("separator not found before the limit", len(self._buffer))
            start = max(0, len(self._buffer) - len(separator) + 1)
            if self._eof or not await self._fill():
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class StreamWriter:
    def __init__(self, conn: StreamState, reader: StreamReader):
        self._conn = conn
        self._reader = reader

    @property
    def transport(self):
        return self

    def write(self, data) -> None:
        conn = self._conn
        if conn.sock.error is not None:
            raise conn.sock.error
        if conn.closing:
            raise BrokenPipeError(errno.EPIPE, "write after close")
        if not data:
            return
        if conn.pending:
            conn.pending += data
        else:
            n = conn.sock.send(data)
            if n < len(data):
                conn.pending += memoryview(data)[n:]
            if n:
                conn.runtime.kick()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        conn = self._conn
        if len(conn.pending) > HIGH_WATER:
            while len(conn.pending) > LOW_WATER:
                if conn.sock.error is not None:
                    raise conn.sock.error
                await conn.waiters.wait()
                conn._push()
        if conn.sock.error is not None:
            raise conn.sock.error

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._conn.eof_requested = True
        self._conn._push()

    def close(self) -> None:
        conn = self._conn
        if not conn.closing:
            conn.closing = True
            conn._push()

    def is_closing(self) -> bool:
        return self._conn.closing

    async def wait_closed(self) -> None:
        conn = self._conn
        while conn.pending and conn.sock.error is None:
            await conn.waiters.wait()
            conn._push()

    def abort(self) -> None:
        self._conn.pending.clear()
        self._conn.closing = True
        self._conn.sock.abort(now=self._conn.runtime.now_ns())
        self._conn.runtime.kick()

    def get_extra_info(self, name: str, default=None):
        return socket_extra_info(self._conn.sock, name, default)


def socket_extra_info(sock, name: str, default=None):
    """``get_extra_info`` of asyncio's transports, for a wirestack TCP socket (the stream
    writer's and the protocol transport's): peername, sockname, socket, tcp_stats."""
    if name == "peername":
        return sock.remote
    if name == "sockname":
        return sock.local
    if name == "socket":
        return sock
    if name == "tcp_stats":
        return sock.stats()
    return default


def make_streams(runtime, sock) -> tuple[StreamReader, StreamWriter]:
    conn = StreamState(runtime, sock)
    reader = StreamReader(conn)
    return reader, StreamWriter(conn, reader)


async def open_connection(runtime, host: str, port: int, *, local_addr=None,
                          **sockopts) -> tuple[StreamReader, StreamWriter]:
    sock = runtime.host.tcp_socket(**sockopts)
    if local_addr is not None:
        sock.bind(local_addr)
    conn = StreamState(runtime, sock)
    sock.connect((host, port), now=runtime.now_ns())
    runtime.kick()
    while sock.state in ("SYN_SENT", "SYN_RECEIVED") and sock.error is None:
        await conn.waiters.wait()
    if sock.error is not None:
        raise sock.error
    if sock.state != "ESTABLISHED" and sock.state != "CLOSE_WAIT":
        raise ConnectionError(f"connection ended in state {sock.state}")
    reader = StreamReader(conn)
    return reader, StreamWriter(conn, reader)


class Server:
    """What ``start_server`` returns: a listening socket that runs ``client_connected_cb``
    for every accepted connection, as a task."""

    def __init__(self, runtime, sock, callback: Callable[..., Awaitable | None]):
        self.runtime = runtime
        self.sock = sock
        self.callback = callback
        self.tasks: set[asyncio.Task] = set()
        self._closed = False
        self._serving = runtime.loop.create_future()
        sock.on_event = self._on_event

    @property
    def sockets(self):
        return [self.sock]

    def _on_event(self) -> None:
        while not self._closed:
            try:
                conn_sock = self.sock.accept()
            except OSError:
                return
            if conn_sock is None:
                return
            self._serve(conn_sock)

    def _serve(self, conn_sock) -> None:
        """An accepted connection: streams for it, the callback run as a task."""
        reader, writer = make_streams(self.runtime, conn_sock)
        result = self.callback(reader, writer)
        if asyncio.iscoroutine(result):
            task = self.runtime.loop.create_task(result)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.runtime.wake()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close(now=self.runtime.now_ns())
            self.runtime.kick()
            if not self._serving.done():
                self._serving.set_result(None)

    def is_serving(self) -> bool:
        return not self._closed

    async def wait_closed(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        await self._serving

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


def server_address(host: str | int | None, port: int | str | None) -> tuple[str, int]:
    """The (ip, port) to listen on, from ``start_server``'s two positional places.

    asyncio's order is ``(client_connected_cb, host, port)``; wirestack's first one was
    ``(client_connected_cb, port, host)``. A port is an ``int`` and a host never is, so an
    ``int`` in the host's place means the older order. As in asyncio, a host of ``None``
    or ``""`` is every local address and a port of ``None`` an ephemeral one."""
    if isinstance(host, int) and not isinstance(host, bool):
        host, port = port, host        # (cb, port) or (cb, port, host)
    if host is not None and not isinstance(host, str):
        raise TypeError(f"host must be a str or None, not {type(host).__name__}")
    if port is None:
        port = 0
    if not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    return host or "0.0.0.0", port


async def start_server(runtime, client_connected_cb, host: str | int | None = None,
                       port: int | str | None = None, *, backlog: int = 128,
                       **sockopts) -> Server:
    """Listen on ``(host, port)`` and run ``client_connected_cb(reader, writer)`` for each
    connection, like ``asyncio.start_server``; see :func:`server_address` for the argument
    order."""
    ip, port = server_address(host, port)
    sock = runtime.host.tcp_socket(**sockopts)
    sock.bind((ip, port))
    sock.listen(backlog, now=runtime.now_ns())
    return Server(runtime, sock, client_connected_cb)
