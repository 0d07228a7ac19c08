"""Bulk transfers through the whole stack on a perfect simulated link: nothing may be lost,
so nothing may be retransmitted."""

import asyncio
import hashlib

import pytest

from wirestack.runtime.sim import Network


def bulk(size, **opts):
    net = Network(seed=1)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, mtu=None)
    payload = bytes(range(256)) * (size // 256)
    result = {}

    async def main():
        done = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            h = hashlib.sha256()
            while data := await reader.read(1 << 20):
                h.update(data)
            done.set_result(h.hexdigest())
            writer.close()

        await b.start_server(sink, 5001, **opts)
        reader, writer = await a.open_connection("198.18.0.2", 5001, **opts)
        for off in range(0, len(payload), 1 << 20):
            writer.write(payload[off:off + (1 << 20)])
            await writer.drain()
        writer.write_eof()
        result["digest"] = await done
        result["stats"] = writer.get_extra_info("socket").stats()
        writer.close()

    net.run(main(), timeout=600)
    return result, hashlib.sha256(payload).hexdigest(), b.counters


@pytest.mark.parametrize("buf", [None, 1 << 20, 4 << 20])
def test_bulk_on_a_perfect_link_needs_no_retransmission(buf):
    # Regression: with a 4 MB receive buffer the receiver once discarded the segment that
    # crossed the 4 MB mark (it had advertised room for it), forcing a fast retransmit and
    # an RTO on a link that loses nothing.
    opts = {} if buf is None else {"rcvbuf": buf, "sndbuf": buf}
    result, digest, counters = bulk(6_000_000, **opts)
    assert result["digest"] == digest
    assert result["stats"]["retransmits"] == 0
    assert counters["tcp.ofo_queued"] == 0


def test_thousand_sequential_connections_leave_no_state():
    """Issue 3: 1,000 sequential connections on one host pair, each sending a line to an
    echo service and reading it back, leave no connection state in either host once their
    TIME_WAITs have run out."""
    net = Network(seed=5, log_events=False)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=1)
    ports = set()

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main():
        server = await b.start_server(echo, 7)
        for i in range(1000):
            reader, writer = await a.open_connection("198.18.0.2", 7)
            ports.add(writer.get_extra_info("sockname")[1])
            writer.write(b"line %d\n" % i)
            assert await reader.readline() == b"line %d\n" % i
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        server.close()

    net.run(main(), timeout=3600)
    # The echo server closes first, so the TIME_WAITs are b's (a port may come back: a SYN
    # with a higher ISN reopens a TIME_WAIT 4-tuple, RFC 9293 §3.10.7.4 / RFC 6191).
    assert b.host.tcp.connection_count() > 0
    assert len(ports) > 500
    net.settle(limit=600)
    assert a.host.tcp.connection_count() == 0
    assert b.host.tcp.connection_count() == 0
    assert not a.host.has_state() and not b.host.has_state()
