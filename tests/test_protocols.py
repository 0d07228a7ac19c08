"""create_server with asyncio-shaped protocols (runtime/protocols.py) and the protocol forms
of echo / discard / chargen: the same bytes as the stream forms, bounded memory under a
slow reader, and the same classes running on asyncio's own loop."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from wirestack import Network
from wirestack.apps.services import ChargenProtocol, DiscardProtocol, EchoProtocol, chargen_lines
from wirestack.runtime.streams import HIGH_WATER

A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def pair(seed=1, **link):
    net = Network(seed=seed)
    a = net.host("a", A_IP + "/24")
    b = net.host("b", B_IP + "/24")
    net.link(a, b, **{"delay_ms": 1, **link})
    return net, a, b


@pytest.mark.parametrize("loss", [0.0, 0.02])
def test_echo_protocol_returns_every_byte_and_closes_after_half_close(loss):
    net, a, b = pair(seed=3, loss=loss)
    data = random.Random(1).randbytes(1_500_000)

    async def main():
        server = await b.create_server(EchoProtocol, port=7)
        reader, writer = await a.open_connection(B_IP, 7)

        async def send():
            for i in range(0, len(data), 100_000):
                writer.write(data[i:i + 100_000])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.ensure_future(send())
        got = await reader.read()          # to EOF: the server's FIN after the last byte
        await sender
        writer.close()
        server.close()
        return got

    got = net.run(main())
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_echo_protocol_stops_reading_while_the_peer_does_not_take_answers():
    """A client that writes and never reads: the echo's queue stays near HIGH_WATER, it stops
    reading, its receive window closes, and the client's writes stall -- memory is bounded."""
    net, a, b = pair(seed=4)
    seen = {}

    class Watched(EchoProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            seen["transport"] = transport

    async def main():
        await b.create_server(Watched, port=7)
        reader, writer = await a.open_connection(B_IP, 7)
        sock = writer.get_extra_info("socket")
        sent = 0
        for _ in range(400):                 # 400 x 64 KB offered, nothing read back
            writer.write(b"x" * 65536)
            sent += 65536
            await asyncio.sleep(0.01)
        tr = seen["transport"]
        return tr.get_write_buffer_size(), tr.is_reading(), sock.unsent, sent

    queued, reading, client_unsent, offered = net.run(main())
    assert not reading
    assert queued <= HIGH_WATER + 65536
    assert client_unsent > 0                 # the client's own buffer holds what we refused


def test_discard_and_chargen_protocols():
    net, a, b = pair(seed=5)

    async def main():
        await b.create_server(DiscardProtocol, port=9)
        await b.create_server(lambda: ChargenProtocol(max_bytes=100_000), port=19)
        r9, w9 = await a.open_connection(B_IP, 9)
        for _ in range(30):
            w9.write(b"y" * 65536)
            await w9.drain()
        w9.write_eof()
        eof9 = await r9.read()               # discard answers nothing, then FIN
        stats = w9.get_extra_info("tcp_stats")
        r19, w19 = await a.open_connection(B_IP, 19)
        got = await r19.read()               # 100,000 bytes of the pattern, then FIN
        return eof9, stats, got

    eof9, stats, got = net.run(main())
    assert eof9 == b""
    assert stats["bytes_out"] == 30 * 65536 and stats["unacked"] == 0   # all taken, then FIN
    period = chargen_lines(95)
    assert got == (period * (100_000 // len(period) + 1))[:100_000]


def test_protocol_forms_run_on_asyncio_too():
    """The same classes on asyncio's loop.create_server (127.0.0.1): they are ordinary
    asyncio protocols."""
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = random.Random(2).randbytes(300_000)
        writer.write(data)
        writer.write_eof()
        got = await reader.read()
        writer.close()
        server.close()
        return got == data

    assert asyncio.run(asyncio.wait_for(main(), 30))


def test_a_protocol_that_raises_resets_its_connection_only():
    """A protocol callback runs inside the host's poll: its exception goes to the loop's
    exception handler (as asyncio reports "Fatal error: protocol.data_received() call
    failed"), that connection is reset, and the host and the other connections go on."""
    net, a, b = pair(seed=6)
    reported, lost = [], []

    class Fragile(EchoProtocol):
        def data_received(self, data):
            if data.startswith(b"boom"):
                raise ValueError("bad request")
            super().data_received(data)

        def connection_lost(self, exc):
            lost.append(exc)

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reported.append(ctx))
        await b.create_server(Fragile, port=7)
        r1, w1 = await a.open_connection(B_IP, 7)
        r2, w2 = await a.open_connection(B_IP, 7)
        w1.write(b"boom")
        try:
            got1 = await r1.read()
        except ConnectionResetError:
            got1 = "reset"
        w2.write(b"still here")
        got2 = await r2.readexactly(10)
        await asyncio.sleep(0.1)
        return got1, got2

    got1, got2 = net.run(main())
    assert got1 == "reset"
    assert got2 == b"still here"
    assert [c["message"] for c in reported] == ["Fatal error: protocol.data_received() call failed."]
    assert isinstance(reported[0]["exception"], ValueError)
    assert len(lost) == 1 and isinstance(lost[0], ValueError)
