"""The classic "simple services": echo, discard, chargen.

These are the smallest useful applications a TCP/IP stack can run, and each one
exercises a different part of it:

* echo (RFC 862, port 7): both directions, flow control in both (a slow reader
  must slow the writer down: we await drain() before reading more).
* discard (RFC 863, port 9): receive only — measures the receive path and the
  advertised window.
* chargen (RFC 864, port 19): send only, as fast as the peer will take it — the
  send path, congestion control and the peer's window.

Every handler is `async def handler(reader, writer)` written against asyncio-shaped
streams, so it runs unchanged on `asyncio.start_server` and on wirestack's own
streams.  Memory is bounded: reads are at most CHUNK bytes, and nothing is read
again until what was written has been drained.
"""

from __future__ import annotations

import asyncio
from typing import Optional

# One read/write unit.  Large enough to amortise per-call overhead, small enough
# that a connection never holds more than a couple of these in Python memory.
CHUNK = 64 * 1024

# Well-known ports (RFC 862/863/864; IANA "Service Name and Transport Protocol
# Port Number Registry").
ECHO_PORT = 7
DISCARD_PORT = 9
CHARGEN_PORT = 19

# Errors a peer can cause by going away abruptly; they end the session quietly.
_PEER_GONE = (ConnectionError, BrokenPipeError, TimeoutError, asyncio.IncompleteReadError)


def _can_write_eof(writer) -> bool:
    # asyncio writers have can_write_eof(); wirestack streams always can (TCP FIN).
    can = getattr(writer, "can_write_eof", None)
    return True if can is None else bool(can())


async def _close(writer) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except _PEER_GONE:
        pass
    except OSError:
        pass


async def echo(reader, writer) -> None:
    """RFC 862: "any data received is sent back" until the peer closes.

    When the peer half-closes (FIN), we finish echoing what we have, then send
    our own FIN, so `printf hi | nc -N host 7` terminates cleanly.
    """
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            # Backpressure: do not read more until the peer has taken this.
            await writer.drain()
        if _can_write_eof(writer):
            writer.write_eof()
            await writer.drain()
    except _PEER_GONE:
        pass
    finally:
        await _close(writer)


async def discard(reader, writer) -> None:
    """RFC 863: "simply throw away any data it receives" until the peer closes."""
    try:
        while await reader.read(CHUNK):
            pass
    except _PEER_GONE:
        pass
    finally:
        await _close(writer)


# RFC 864 suggests the 95 printable ASCII characters (32..126) and 72-character
# lines, each line starting one character further along the sequence, ending in
# CR LF.  After 95 lines the pattern repeats, so one period is 95 * 74 bytes.
_PRINTABLE = bytes(range(32, 127))
_LINE_LEN = 72


def chargen_lines(n: int, start: int = 0) -> bytes:
    """n lines of the RFC 864 pattern, starting with line number `start`."""
    ring = _PRINTABLE * 2
    out = bytearray()
    for i in range(start, start + n):
        k = i % len(_PRINTABLE)
        out += ring[k:k + _LINE_LEN] + b"\r\n"
    return bytes(out)


_PERIOD = chargen_lines(len(_PRINTABLE))  # 7030 bytes, one full cycle
# What chargen writes at a time: whole periods, so every chunk starts at line 0 and the
# stream stays a seamless repetition of the pattern, whatever the chunk size.
_BLOCK = _PERIOD * max(1, CHUNK // len(_PERIOD))


def make_chargen(max_bytes: Optional[int] = None):
    """A chargen handler; `max_bytes` stops after that many bytes (None: until closed)."""

    async def chargen(reader, writer) -> None:
        """RFC 864 TCP chargen: send the pattern until the peer closes.

        "Any data received is thrown away" — we drain the receive side in a
        separate task so the peer's window never closes on us, and we stop when
        the peer finishes (FIN or RST): a half-closed peer is taken as "done",
        which is what a user pressing ^C in a client amounts to.
        """
        peer_done = asyncio.Event()

        async def sink():
            try:
                while await reader.read(CHUNK):
                    pass
            except _PEER_GONE:
                pass
            finally:
                peer_done.set()

        sink_task = asyncio.ensure_future(sink())
        sent = 0
        try:
            while not peer_done.is_set():
                data = _BLOCK
                if max_bytes is not None:
                    if sent >= max_bytes:
                        break
                    data = _BLOCK[: max_bytes - sent]
                writer.write(data)
                sent += len(data)
                await writer.drain()
        except _PEER_GONE:
            pass
        finally:
            sink_task.cancel()
            try:
                await sink_task
            except asyncio.CancelledError:
                pass
            await _close(writer)

    return chargen


chargen = make_chargen()


class EchoProtocol(asyncio.Protocol):
    """RFC 862 as an asyncio Protocol (``create_server(EchoProtocol, port=7)``, with wirestack's
    runtime or asyncio's loop): each piece is written back from ``data_received``, with no
    task to wake, so the answer leaves in the same poll as the request arrived. Flow
    control: while the peer does not take our answers (``pause_writing``) we stop reading,
    so its data waits in our receive window, not in memory. At the peer's FIN we finish
    sending and close."""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def eof_received(self) -> None:
        return None          # close: our FIN follows what is still queued


class DiscardProtocol(asyncio.Protocol):
    """RFC 863 as an asyncio Protocol: data is dropped as it arrives; closed at the peer's FIN."""

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None


class ChargenProtocol(asyncio.Protocol):
    """RFC 864 as an asyncio Protocol: the pattern is written whenever the transport will
    take more (``resume_writing``) and until it says stop (``pause_writing``), so at most
    about HIGH_WATER bytes wait above the socket. Received data is thrown away; the peer's
    FIN ends it (what is queued is still sent). ``max_bytes`` stops after that many."""

    def __init__(self, max_bytes: Optional[int] = None):
        self.max_bytes = max_bytes
        self.sent = 0
        self.paused = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._fill()

    def _fill(self) -> None:
        tr = self.transport
        while not self.paused and not tr.is_closing():
            data = _BLOCK
            if self.max_bytes is not None:
                if self.sent >= self.max_bytes:
                    tr.close()
                    return
                data = data[: self.max_bytes - self.sent]
            tr.write(data)
            self.sent += len(data)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._fill()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None


class UdpEcho:
    """RFC 862 over UDP: "send back any datagram received" (an asyncio DatagramProtocol).

        transport, proto = await loop.create_datagram_endpoint(UdpEcho, local_addr=(ip, 7))

    Nothing is buffered: each datagram is answered at once or dropped, so memory
    stays bounded however fast datagrams arrive.
    """

    def __init__(self):
        self.transport = None
        self.datagrams = 0
        self.bytes = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.datagrams += 1
        self.bytes += len(data)
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def error_received(self, exc) -> None:
        # An ICMP error for an earlier reply (e.g. port unreachable): nothing to do.
        pass

    def connection_lost(self, exc) -> None:
        self.transport = None


class UdpDiscard(UdpEcho):
    """RFC 863 over UDP: count and drop."""

    def datagram_received(self, data: bytes, addr) -> None:
        self.datagrams += 1
        self.bytes += len(data)


# name -> (port, TCP handler); what `wirestack serve` starts by default.
TCP_SERVICES = {
    "echo": (ECHO_PORT, echo),
    "discard": (DISCARD_PORT, discard),
    "chargen": (CHARGEN_PORT, chargen),
}
UDP_SERVICES = {
    "echo": (ECHO_PORT, UdpEcho),
    "discard": (DISCARD_PORT, UdpDiscard),
}
