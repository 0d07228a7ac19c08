"""tcp.out_segs: netstat's "segments sent out", every TCP segment a host sends (RSTs and
retransmissions included, as Linux counts them; tcp.retrans_segs says how many of them
were retransmissions)."""

import asyncio

from wirestack.runtime.sim import Network
from wirestack.wire import parse_frame


def test_out_segs_counts_every_tcp_segment_the_host_put_on_the_wire():
    net = Network(seed=5)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=2, loss=0.05)
    sent_by = {"198.18.0.1": 0, "198.18.0.2": 0}

    def count(now, frame):
        f = parse_frame(frame)
        if f.tcp is not None:
            sent_by[".".join(map(str, f.ip.src))] += 1

    link.add_tap(count)

    async def main():
        async def sink(reader, writer):
            while await reader.read(65536):
                pass
            writer.close()

        await b.start_server(sink, 9)
        _, writer = await a.open_connection("198.18.0.2", 9)
        writer.write(bytes(200_000))
        writer.write_eof()
        await writer.drain()
        try:                       # a port nobody listens on: b answers with a RST
            await a.open_connection("198.18.0.2", 10)
        except ConnectionRefusedError:
            pass
        await asyncio.sleep(1)

    net.run(main())
    net.settle()
    assert a.counters["tcp.retrans_segs"] > 0
    assert a.counters["tcp.out_segs"] == sent_by["198.18.0.1"]
    assert b.counters["tcp.out_segs"] == sent_by["198.18.0.2"]
    assert b.counters["tcp.out_rsts"] >= 1
    net.close()
