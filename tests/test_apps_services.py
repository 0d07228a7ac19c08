"""echo / discard / chargen (RFC 862/863/864) over real asyncio TCP and UDP on 127.0.0.1."""

import asyncio
import os

from wirestack.apps import services
from wirestack.apps.services import UdpEcho, chargen_lines, make_chargen


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def serve(handler):
    """Start `handler` on an ephemeral port; also report when each session ends."""
    finished = asyncio.Queue()

    async def wrapped(reader, writer):
        try:
            await handler(reader, writer)
        finally:
            finished.put_nowait(True)

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], finished


def test_echo_returns_everything_and_closes_after_half_close():
    async def main():
        server, port, finished = await serve(services.echo)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = os.urandom(1_000_000)

            async def send():
                writer.write(data)
                await writer.drain()
                writer.write_eof()  # our FIN: the server echoes the rest, then FINs

            sender = asyncio.ensure_future(send())
            got = bytearray()
            while chunk := await reader.read(65536):
                got += chunk
            await sender
            writer.close()
            await finished.get()
            return bytes(got) == data

    assert run(main())


def test_discard_swallows_and_closes_on_eof():
    async def main():
        server, port, finished = await serve(services.discard)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(20):
                writer.write(b"x" * 65536)
                await writer.drain()
            writer.write_eof()
            tail = await reader.read()  # nothing comes back, then the server's FIN
            writer.close()
            await finished.get()
            return tail

    assert run(main()) == b""


def test_chargen_pattern_and_stops_when_peer_closes():
    async def main():
        server, port, finished = await serve(services.chargen)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            got = await reader.readexactly(200_000)  # spans several 95-line periods
            writer.close()                            # the user hits ^C
            await asyncio.wait_for(finished.get(), 5)  # the server notices and ends
            return got

    got = run(main())
    lines = got.split(b"\r\n")
    assert lines[0] == bytes(range(32, 32 + 72))                      # " !\"#$..."
    assert lines[1] == bytes(range(33, 33 + 72))                      # one further along
    assert lines[94] == bytes([126]) + bytes(range(32, 32 + 71))      # wraps around
    assert lines[95] == lines[0]                                      # period of 95 lines
    assert all(len(l) == 72 for l in lines[:-1])
    assert got == (chargen_lines(95) * 30)[:len(got)]


def test_chargen_stops_on_half_close_and_max_bytes():
    async def main():
        server, port, finished = await serve(services.chargen)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readexactly(1000)
            writer.write_eof()                       # peer done: chargen stops sending
            await asyncio.wait_for(finished.get(), 5)
            while await reader.read(65536):          # what was in flight, then EOF
                pass
            writer.close()

        server, port, finished = await serve(make_chargen(max_bytes=10_000))
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = await reader.read()  # until the server's FIN
            writer.close()
            return data

    data = run(main())
    assert len(data) == 10_000
    assert data == chargen_lines(200)[:10_000]


def test_udp_echo():
    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        replies = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                replies.put_nowait((data, addr))

        ct, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
        try:
            ct.sendto(b"hello")
            ct.sendto(b"\x00" * 1400)
            first = await asyncio.wait_for(replies.get(), 5)
            second = await asyncio.wait_for(replies.get(), 5)
            return first, second, proto.datagrams, port
        finally:
            ct.close()
            transport.close()

    (d1, a1), (d2, _), count, port = run(main())
    assert d1 == b"hello" and a1[1] == port
    assert d2 == b"\x00" * 1400
    assert count == 2
