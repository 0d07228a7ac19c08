"""asyncio-shaped UDP endpoints and an async ping socket over the sans-I/O host."""

from __future__ import annotations

import asyncio


class DatagramTransport:
    """Like asyncio's DatagramTransport: ``sendto``, ``close``, ``get_extra_info``."""

    def __init__(self, runtime, sock, protocol):
        self.runtime = runtime
        self.sock = sock
        self.protocol = protocol
        self._closing = False
        sock.on_event = self._on_event

    def _on_event(self) -> None:
        sock = self.sock
        while not self._closing:
            try:
                data, addr = sock.recvfrom()
            except BlockingIOError:
                break
            except OSError as err:
                self.protocol.error_received(err)
                continue
            self.protocol.datagram_received(data, addr)
        self.runtime.wake()

    def sendto(self, data, addr=None) -> None:
        try:
            if addr is None:
                self.sock.send(data)
            else:
                self.sock.sendto(data, addr)
        except OSError as err:
            self.protocol.error_received(err)
            return
        self.runtime.kick()

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self.sock.close()
            self.protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default=None):
        if name == "sockname":
            return self.sock.getsockname()
        if name == "peername" and self.sock.remote is not None:
            from ..wire.addr import ip_ntoa
            return ip_ntoa(self.sock.remote[0]), self.sock.remote[1]
        if name == "socket":
            return self.sock
        return default


async def create_datagram_endpoint(runtime, protocol_factory, local_addr=None, remote_addr=None):
    sock = runtime.host.udp_socket()
    if local_addr is not None:
        sock.bind(local_addr)
    if remote_addr is not None:
        sock.connect(remote_addr)
    protocol = protocol_factory()
    transport = DatagramTransport(runtime, sock, protocol)
    protocol.connection_made(transport)
    return transport, protocol


class AsyncPingSocket:
    """Send echo requests and await replies (EchoReply) or ICMP errors (IcmpErrorReport)."""

    def __init__(self, runtime, sock=None):
        self.runtime = runtime
        self.sock = sock if sock is not None else runtime.host.ping_socket()
        self.ident = getattr(self.sock, "ident", None)
        self._waiters: list[asyncio.Future] = []
        self.sock.on_event = self._on_event

    def _on_event(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        if waiters:
            self.runtime.wake()

    def send(self, dst: str, seq: int, payload: bytes = b"", ttl: int | None = None) -> None:
        self.sock.send(dst, seq, payload, ttl)
        self.runtime.kick()

    async def receive(self, timeout: float | None = None):
        """The next reply or error report, or None after ``timeout`` seconds."""
        loop = self.runtime.loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            item = self.sock.receive()
            if item is not None:
                return item
            fut = loop.create_future()
            self._waiters.append(fut)
            if deadline is None:
                await fut
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(fut, remaining)
            except asyncio.TimeoutError:
                return self.sock.receive()

    def close(self) -> None:
        self.sock.close()


def icmp_error_socket(runtime) -> AsyncPingSocket:
    """An async view of the host's ICMP error watcher (IcmpErrorRecord items): what
    traceroute awaits. Same ``receive(timeout)`` and ``close()`` as the ping socket."""
    return AsyncPingSocket(runtime, runtime.host.icmp.error_socket())
