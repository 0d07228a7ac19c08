"""Path MTU discovery for TCP (RFC 1191) across a router with a smaller next hop, and the
black hole a router makes when its ICMP is switched off."""

import asyncio
import hashlib
import random

from wirestack.iface import HostConfig
from wirestack.runtime.sim import Network
from wirestack.wire import parse_frame

DATA = random.Random(5).randbytes(200_000)


def _transfer(icmp_errors=True, pmtu_discovery=True, deadline=60.0):
    """a -> r1 -> r2 -> b where the middle link has MTU 576; returns what b received."""
    net = Network(seed=7)
    a, (r1, r2), b = net.chain(2, mtu=[1500, 576, 1500], delay_ms=2,
                               icmp_errors=[icmp_errors, True])
    a.host.config.pmtu_discovery = pmtu_discovery
    middle = []
    net.media[1].add_tap(lambda now, frame: middle.append(frame))
    got = bytearray()
    done = asyncio.Event()

    async def sink(reader, writer):
        while data := await reader.read(65536):
            got.extend(data)
        done.set()
        writer.close()

    async def main():
        await b.start_server(sink, 9)
        reader, writer = await a.open_connection("198.18.2.2", 9)
        writer.write(DATA)
        writer.write_eof()
        try:
            await asyncio.wait_for(done.wait(), deadline)
        except asyncio.TimeoutError:
            pass

    net.run(main())
    return net, a, r1, bytes(got), middle


def test_tcp_discovers_the_path_mtu_and_resends_at_the_new_size():
    net, a, r1, got, middle = _transfer()
    assert hashlib.sha256(got).digest() == hashlib.sha256(DATA).digest()
    assert r1.counters["ip.frag_fails"] >= 1            # DF datagrams too big for the next hop
    assert r1.counters["ip.frag_creates"] == 0          # ... were never fragmented
    assert a.counters["tcp.pmtu_updates"] == 1
    assert a.host.mtu_for(bytes([198, 18, 2, 2])) == 576
    frames = [f for f in map(parse_frame, middle) if f.ip]
    assert max(f.ip.total_length for f in frames) == 576
    assert all(f.ip.df for f in frames if f.tcp)
    # The data frag-needed refused reached b anyway: resent at the new size.
    assert a.counters["tcp.retrans_segs"] >= 1
    assert [e["mtu"] for e in a.log.filter(kind="pmtu")][:1] == [576]


def test_without_discovery_the_router_fragments():
    net, a, r1, got, middle = _transfer(pmtu_discovery=False)
    assert got == DATA
    assert r1.counters["ip.frag_creates"] > 0 and r1.counters["ip.frag_fails"] == 0
    assert a.counters["tcp.pmtu_updates"] == 0
    assert any(f.ip and f.ip.mf for f in map(parse_frame, middle))


def test_router_without_icmp_is_a_black_hole():
    net, a, r1, got, middle = _transfer(icmp_errors=False, deadline=30.0)
    # The handshake (small segments) gets through; full-size data never does.
    assert len(got) == 0
    assert a.counters["tcp.pmtu_updates"] == 0
    assert r1.counters["ip.frag_fails"] >= 3 and r1.counters["icmp.out_suppressed"] == r1.counters["ip.frag_fails"]
    assert a.counters["tcp.retrans_segs"] >= 3
    # The router's event log says what happened to each of them.
    events = r1.log.filter(kind="frag_needed")
    assert len(events) == r1.counters["ip.frag_fails"]
    assert {(e["mtu"], e["icmp_sent"]) for e in events} == {(576, False)}


def test_learned_path_mtu_is_used_by_the_next_connection_and_expires():
    net, a, r1, got, middle = _transfer()
    dst = bytes([198, 18, 2, 2])
    host = a.host
    assert host.mtu_for(dst) == 576
    host._now += HostConfig().pmtu_timeout + 1
    assert host.mtu_for(dst) == 1500 and dst not in host.pmtu
