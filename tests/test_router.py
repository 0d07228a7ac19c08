"""Routers (RFC 1812): forwarding, TTL, unreachables, fragmentation at a hop, frag-needed,
the bounded output queue, and traceroute across a chain of routers."""

import asyncio

import pytest

from wirestack.apps.traceroute import traceroute
from wirestack.iface import Host, HostConfig
from wirestack.iface.icmp import IcmpErrorReport
from wirestack.runtime.sim import Network
from wirestack.wire import icmp, ip_aton, ipv4, parse_frame

A_MAC, R0_MAC, R1_MAC = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\1\x00", b"\x02\0\0\0\1\x01"


def test_routing_table_longest_prefix_wins():
    h = Host("h")
    h.add_interface(A_MAC, "198.18.1.1/24")
    h.add_interface(R0_MAC, "198.18.2.1/24")
    h.routes.add_default("198.18.1.254")
    h.add_route("198.18.8.0/21", via="198.18.2.7")
    h.add_route("198.18.9.0/24", via="198.18.1.9")
    assert h.routes.lookup(ip_aton("198.18.9.5")) == (0, ip_aton("198.18.1.9"))
    assert h.routes.lookup(ip_aton("198.18.10.5")) == (1, ip_aton("198.18.2.7"))
    assert h.routes.lookup(ip_aton("198.19.0.1")) == (0, ip_aton("198.18.1.254"))
    assert h.routes.lookup(ip_aton("198.18.2.33")) == (1, ip_aton("198.18.2.33"))
    with pytest.raises(OSError):
        h.add_route("198.18.50.0/24", via="198.18.77.1")   # gateway not on a connected net
    assert h.route_lines() == [
        "default via 198.18.1.254 dev eth0",
        "198.18.1.0/24 dev eth0 proto kernel scope link src 198.18.1.1",
        "198.18.2.0/24 dev eth1 proto kernel scope link src 198.18.2.1",
        "198.18.8.0/21 via 198.18.2.7 dev eth1",
        "198.18.9.0/24 via 198.18.1.9 dev eth0",
    ]


def _router(mtu1=1500, **cfg):
    r = Host("r", config=HostConfig(forwarding=True, gratuitous_arp=False, **cfg))
    r.add_interface(R0_MAC, "198.18.1.1/24")
    r.add_interface(R1_MAC, "198.18.2.1/24", mtu=mtu1)
    r.arp.update(ip_aton("198.18.1.2"), A_MAC, 0, create=True)
    r.arp.update(ip_aton("198.18.2.2"), b"\x02\0\0\0\2\x02", 0, create=True)
    return r


def _frame(payload: bytes, ttl=64, df=False, dst="198.18.2.2", proto=253):
    ip = ipv4.build(ip_aton("198.18.1.2"), ip_aton(dst), proto, payload, ttl=ttl, ident=7, df=df)
    return R0_MAC + A_MAC + b"\x08\x00" + ip


def test_forwarding_decrements_ttl_and_fixes_the_checksum():
    r = _router()
    r.receive(_frame(b"x" * 100, ttl=9), 0, 0)
    ((ifindex, out),) = r.transmit(0)
    f = parse_frame(out)   # parse_frame verifies the header checksum
    assert ifindex == 1 and f.ip.ttl == 8 and f.eth.src == R1_MAC and bytes(f.payload) == b"x" * 100
    assert r.counters["ip.forw_datagrams"] == 1


def test_a_host_that_is_not_a_router_drops_what_is_not_for_it():
    r = Host("h", config=HostConfig(gratuitous_arp=False))
    r.add_interface(R0_MAC, "198.18.1.1/24")
    r.add_interface(R1_MAC, "198.18.2.1/24")
    r.receive(_frame(b"x" * 10), 0, 0)
    assert r.transmit(0) == [] and r.counters["ip.in_addr_errors"] == 1


def test_unicast_datagram_in_a_link_broadcast_is_not_forwarded():
    r = _router()
    frame = _frame(b"x" * 10)
    r.receive(b"\xff" * 6 + frame[6:], 0, 0)
    assert r.transmit(0) == [] and r.counters["ip.in_addr_errors"] == 1
    r.receive(frame, 0, 0)
    assert len(r.transmit(0)) == 1 and r.counters["ip.forw_datagrams"] == 1


def test_ttl_one_gets_time_exceeded_from_the_incoming_side():
    r = _router()
    r.receive(_frame(b"x" * 10, ttl=1), 0, 0)
    ((ifindex, out),) = r.transmit(0)
    f = parse_frame(out)
    assert ifindex == 0 and f.ip.src == ip_aton("198.18.1.1") and f.ip.dst == ip_aton("198.18.1.2")
    assert (f.icmp.type, f.icmp.code) == (icmp.TIME_EXCEEDED, icmp.TTL_EXCEEDED)
    assert r.counters["ip.ttl_exceeded"] == 1 and r.counters["icmp.out_time_excds"] == 1


def test_no_route_gets_net_unreachable():
    r = _router()
    r.receive(_frame(b"x" * 10, dst="198.19.7.7"), 0, 0)
    ((_, out),) = r.transmit(0)
    f = parse_frame(out)
    assert (f.icmp.type, f.icmp.code) == (icmp.DEST_UNREACHABLE, icmp.NET_UNREACHABLE)
    assert r.counters["ip.out_no_routes"] == 1


def test_df_too_big_gets_frag_needed_with_the_next_hop_mtu():
    r = _router(mtu1=576)
    r.receive(_frame(b"x" * 1000, df=True), 0, 0)
    ((ifindex, out),) = r.transmit(0)
    f = parse_frame(out)
    assert ifindex == 0
    assert (f.icmp.type, f.icmp.code, f.icmp.next_hop_mtu) == (icmp.DEST_UNREACHABLE, icmp.FRAG_NEEDED, 576)
    assert r.counters["ip.frag_fails"] == 1 and r.counters["ip.forw_datagrams"] == 0


def test_icmp_switched_off_drops_silently_and_counts_it():
    r = _router(mtu1=576, icmp_errors=False)
    r.receive(_frame(b"x" * 1000, df=True), 0, 0)
    r.receive(_frame(b"x" * 10, ttl=1), 0, 0)
    assert r.transmit(0) == []
    assert r.counters["icmp.out_suppressed"] == 2 and r.counters["ip.frag_fails"] == 1


def test_fragmentation_at_a_smaller_hop_and_refragmenting_a_fragment():
    r = _router(mtu1=576)
    payload = bytes(range(256)) * 6   # 1536 bytes
    r.receive(_frame(payload), 0, 0)
    outs = [parse_frame(f) for _, f in r.transmit(0)]
    assert [f.ip.total_length for f in outs] == [572, 572, 452]
    assert all(f.ip.ttl == 63 and f.ip.ident == 7 for f in outs)
    assert [f.ip.mf for f in outs] == [True, True, False]
    assert [f.ip.frag_offset for f in outs] == [0, 552, 1104]
    assert r.counters["ip.frag_creates"] == 3 and r.counters["ip.frag_oks"] == 1
    # A fragment (MF set, offset 1480) cut again keeps MF on its last piece and its offset.
    ip = ipv4.build_header(ip_aton("198.18.1.2"), ip_aton("198.18.2.2"), 253, 800, ttl=9, ident=8,
                           mf=True, frag_offset=1480) + bytes(800)
    r.receive(R0_MAC + A_MAC + b"\x08\x00" + ip, 0, 0)
    outs = [parse_frame(f) for _, f in r.transmit(0)]
    assert [(f.ip.frag_offset, f.ip.mf) for f in outs] == [(1480, True), (2032, True)]


def test_arp_failure_for_a_forwarded_datagram_gets_host_unreachable():
    net = Network(seed=2)
    a, (r1,), b = net.chain(1, delay_ms=1)

    async def main():
        sock = a.ping_socket()
        sock.send("198.18.1.77", 1)
        return await sock.receive(timeout=10)

    report = net.run(main())
    assert isinstance(report, IcmpErrorReport)
    assert (report.type, report.code) == (icmp.DEST_UNREACHABLE, icmp.HOST_UNREACHABLE)
    assert report.src == ip_aton("198.18.0.2")
    assert r1.counters["arp.resolution_failed"] == 1 and r1.counters["icmp.out_dest_unreachs"] == 1


def test_traceroute_across_three_routers_prints_each_hop():
    net = Network(seed=1)
    a, routers, b = net.chain(3, delay_ms=1)
    lines = []
    result = net.run(traceroute(a, "198.18.3.2", on_line=lines.append))
    assert lines[0] == "traceroute to 198.18.3.2 (198.18.3.2), 30 hops max, 60 byte packets"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["1", "198.18.0.2"], ["2", "198.18.1.2"], ["3", "198.18.2.2"], ["4", "198.18.3.2"]]
    assert all(line.count(" ms") == 3 for line in lines[1:])
    # Each hop is one link further: 2 ms more round trip per hop (after ARP has resolved).
    assert [hop[2].rtt_ms for hop in result.hops] == [2.0, 4.0, 6.0, 8.0]
    assert result.reached
    assert [r.counters["ip.ttl_exceeded"] for r in routers] == [3, 3, 3]
    assert b.counters["udp.no_ports"] == 3

    lines = []
    result = net.run(traceroute(a, "198.18.3.2", icmp=True, on_line=lines.append))
    assert result.hop_addresses() == ["198.18.0.2", "198.18.1.2", "198.18.2.2", "198.18.3.2"]


def test_traceroute_shows_a_silent_router_as_stars():
    net = Network(seed=1)
    a, routers, b = net.chain(3, delay_ms=1, icmp_errors=[True, False, True])
    lines = []
    result = net.run(traceroute(a, "198.18.3.2", wait=1.0, on_line=lines.append))
    assert lines[2] == " 2  * * *"
    assert result.hop_addresses() == ["198.18.0.2", None, "198.18.2.2", "198.18.3.2"]
    assert routers[1].counters["icmp.out_suppressed"] == 3


def test_ping_crosses_routers_and_ttl_shows_the_hops():
    net = Network(seed=3)
    a, routers, b = net.chain(2, delay_ms=2)

    async def main():
        sock = a.ping_socket()
        sock.send("198.18.2.2", 1)
        return await sock.receive(timeout=5)

    reply = net.run(main())
    assert reply.src == ip_aton("198.18.2.2") and reply.ttl == 64 - 2


def test_router_queue_is_bounded_drop_tail_and_paced():
    net = Network(seed=4)
    a = net.host("a", "198.18.1.2/24", gateway="198.18.1.1")
    b = net.host("b", "198.18.2.2/24", gateway="198.18.2.1")
    r = net.router("r", "198.18.1.1/24", "198.18.2.1/24", rate_mbps=1, queue_limit=5)
    net.link(a, r, delay_ms=1)
    net.link(r, b, delay_ms=1)
    arrivals = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            arrivals.append(net.now)

    async def main():
        await b.create_datagram_endpoint(Sink, local_addr=("0.0.0.0", 9))
        tr, _ = await a.create_datagram_endpoint(asyncio.DatagramProtocol)
        tr.sendto(b"warm", ("198.18.2.2", 9))       # resolve ARP on every hop first
        await asyncio.sleep(1)
        arrivals.clear()
        for _ in range(20):
            tr.sendto(bytes(1000), ("198.18.2.2", 9))
        await asyncio.sleep(2)

    net.run(main())
    iface = r.host.interfaces[1]
    # The burst reaches the router in one instant: five fit in the queue, fifteen find it full.
    assert len(arrivals) == 5
    assert r.counters["ip.fwd_queue_drops"] == 15 == iface.fwd_queue_drops
    assert iface.fwd_queue_peak == 5
    # Paced at 1 Mbit/s: (1028 + 18) bytes * 8 = 8.368 ms apart.
    gaps = {b - a for a, b in zip(arrivals, arrivals[1:])}
    assert gaps == {8_368_000}


def test_readme_router_example_works_as_written(capsys):
    """The README's 'two subnets and a router' block, run verbatim, prints what it shows."""
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    code, shown = re.search(r"### Subnets and routers.*?```python\n(.*?)```\n\n```\n(.*?)```", readme,
                            re.S).groups()
    assert len(code.strip().splitlines()) <= 11
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown
