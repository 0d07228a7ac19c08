"""nc's plumbing: stdin to a connection and the connection to stdout, both at once.

Reading and writing must run concurrently, as in netcat: a peer that echoes fills our
receive window while we are still sending, and if nobody reads, both windows fill and the
transfer deadlocks. And the connection opens before stdin ends, so nc works interactively.

Two ways to read stdin, one per runtime:

* On a TAP device (real time) a daemon thread reads stdin and hands chunks to the loop
  through a small queue (bounded: the thread waits while the connection is slow).
* On the simulated wire (virtual time) a thread would let virtual time race ahead of the
  input. Instead stdin is read in the loop itself, which freezes virtual time while it
  blocks: the input arrives "at once" as far as the simulation can tell. Before blocking
  on a terminal or an idle pipe, it lets the connection settle (everything sent is
  acknowledged and answers have had time to come back), so typed lines are answered
  before the next one is read.
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import threading

CHUNK = 65536


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.buffer.fileno()
    except (AttributeError, OSError, ValueError):
        return None   # no stdin (closed, or replaced by something without a descriptor)


def _ready(fd: int, wait: float = 0.0) -> bool:
    try:
        return bool(select.select([fd], [], [], wait)[0])
    except (OSError, ValueError):
        return True


class ThreadedStdin:
    """stdin read by a daemon thread (it never keeps the process alive at exit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=4)
        self.fd = _stdin_fd()
        if self.fd is None:
            self.queue.put_nowait(b"")
        else:
            threading.Thread(target=self._run, name="stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, CHUNK)
            except OSError:
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(self.queue.put(chunk), self.loop).result()
            except (RuntimeError, asyncio.CancelledError):
                return   # the loop is gone
            if not chunk:
                return

    async def read(self) -> bytes:
        return await self.queue.get()


class SimulatedStdin:
    """stdin read in the virtual-time loop; ``settle`` runs before a read that would block."""

    def __init__(self, settle=None):
        self.fd = _stdin_fd()
        self.settle = settle

    async def read(self) -> bytes:
        if self.fd is None:
            return b""
        # A producer that is merely slower than us (cat, head) is not a person typing:
        # settle only when nothing has come for a moment.
        if self.settle is not None and not _ready(self.fd) and not _ready(self.fd, 0.05):
            await self.settle()
        # Wait for input in small real-time steps, yielding to the loop in between: virtual
        # time stands still (nothing is due), but a Ctrl-C (the task's cancellation) gets in.
        while not _ready(self.fd, 0.1):
            await asyncio.sleep(0)
        try:
            return os.read(self.fd, CHUNK)
        except OSError:
            return b""


def settle_connection(writer, quiet: float = 0.2, limit: float = 600.0):
    """A ``settle`` for SimulatedStdin: wait (virtual time) until everything written is
    acknowledged, then ``quiet`` seconds more for the answer to come back."""
    async def settle() -> None:
        sock = writer.get_extra_info("socket")
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while sock is not None and sock.unsent and sock.error is None and loop.time() < end:
            await asyncio.sleep(0.01)
        await asyncio.sleep(quiet)
    return settle


async def copy_both_ways(reader, writer, source, out) -> tuple[int, int]:
    """stdin (``source``) -> ``writer`` and ``reader`` -> ``out`` concurrently; half-close
    (FIN) when stdin ends; return when the peer has closed its side. Returns the bytes
    (sent, received)."""
    sent = received = 0

    async def upstream() -> None:
        nonlocal sent
        while chunk := await source.read():
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
        writer.write_eof()
        await writer.drain()

    up = asyncio.ensure_future(upstream())
    try:
        while True:
            if up.done() and up.exception() is not None:
                raise up.exception()
            data = await reader.read(CHUNK)
            if not data:
                break
            received += len(data)
            out.write(data)
            out.flush()
        if not up.done():
            # The peer closed first (e.g. an HTTP server after its answer), as nc does.
            up.cancel()
        await asyncio.gather(up, return_exceptions=True)
        if not up.cancelled() and up.exception() is not None:
            raise up.exception()
    finally:
        if not up.done():
            up.cancel()
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return sent, received


UDP_PAYLOAD = 1472   # 1500 - 20 (IPv4) - 8 (UDP): one datagram per frame, no fragments


class _UdpPeer:
    """The asyncio DatagramProtocol of `nc -u`: datagrams to ``out``, errors kept."""

    def __init__(self, out):
        self.out = out
        self.received = 0
        self.datagrams = 0
        self.error: OSError | None = None
        self.last = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.out.write(data)
        self.out.flush()
        self.received += len(data)
        self.datagrams += 1
        self.last = asyncio.get_running_loop().time()

    def error_received(self, exc) -> None:
        self.error = exc

    def connection_lost(self, exc) -> None:
        pass


async def udp_both_ways(runtime, host: str, port: int, source, out, linger: float = 1.0):
    """`nc -u`: each piece of stdin (at most one frame's payload) is one datagram to
    host:port; every datagram that comes back goes to ``out``. After stdin ends, wait
    ``linger`` seconds of silence for late answers (nc -u -q), then stop. Returns
    (datagrams sent, bytes sent, datagrams received, bytes received); an ICMP error (port
    unreachable) ends it with a CommandError."""
    from .common import CommandError
    transport, peer = await runtime.create_datagram_endpoint(lambda: _UdpPeer(out),
                                                             remote_addr=(host, port))
    loop = asyncio.get_running_loop()
    try:
        return await _udp_loop(transport, peer, source, loop, linger)
    except ConnectionRefusedError:
        raise CommandError(f"{host} port {port} (udp): Connection refused (the host answered "
                           "with ICMP port unreachable)") from None
    finally:
        transport.close()


async def _udp_loop(transport, peer, source, loop, linger: float):
    sent = sent_bytes = 0
    while chunk := await source.read():
        for off in range(0, len(chunk), UDP_PAYLOAD):
            piece = chunk[off:off + UDP_PAYLOAD]
            transport.sendto(piece)
            sent += 1
            sent_bytes += len(piece)
            if peer.error is not None:
                raise peer.error
            await asyncio.sleep(0)   # let answers in between, as a stream of datagrams
    quiet_since = loop.time()
    while True:
        await asyncio.sleep(0.05)
        if peer.error is not None:
            raise peer.error
        if loop.time() - max(quiet_since, peer.last or 0.0) >= linger:
            break
    return sent, sent_bytes, peer.datagrams, peer.received
