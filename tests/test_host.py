"""The sans-I/O host: ARP, IPv4 validation, fragmentation, ICMP, UDP — frames in, frames out."""

import errno

import pytest

from wirestack.iface import Host, HostConfig
from wirestack.units import SEC
from wirestack.wire import arp, ethernet, icmp, ip_aton, ipv4, parse_frame, udp

A_MAC, B_MAC, GW_MAC = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\0\x02", b"\x02\0\0\0\0\xfe"
A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def make_pair(mtu_a=1500, mtu_b=1500, config=None):
    a = Host("a", config=config)
    b = Host("b", config=config)
    a.add_interface(A_MAC, A_IP + "/24", mtu=mtu_a)
    b.add_interface(B_MAC, B_IP + "/24", mtu=mtu_b)
    return a, b


def shuttle(a, b, now=0, rounds=20, drop=None, log=None):
    """Carry frames between two hosts until both are quiet. ``drop(frame)`` may eat frames."""
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for _, frame in src.transmit(now):
                moved = True
                if log is not None:
                    log.append((src.name, frame))
                if drop is not None and drop(frame):
                    continue
                dst.receive(frame, now, 0)
        if not moved:
            return


def warm(a, b):
    """Exchange announcements and ARP so later frames go straight out."""
    shuttle(a, b)
    a.arp.update(ip_aton(B_IP), B_MAC, 0, create=True)
    b.arp.update(ip_aton(A_IP), A_MAC, 0, create=True)


def frames_of(host, now=0):
    return [f for _, f in host.transmit(now)]


def test_gratuitous_arp_announces_the_address():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    (frame,) = frames_of(a)
    f = parse_frame(frame)
    assert f.eth.dst == b"\xff" * 6
    assert f.arp.op == arp.REQUEST and f.arp.spa == f.arp.tpa == ip_aton(A_IP)
    assert a.counters["arp.out_gratuitous"] == 1


def test_first_ping_waits_for_arp_instead_of_being_lost():
    a, b = make_pair()
    shuttle(a, b)  # announcements
    sock = a.ping_socket()
    sock.send(B_IP, 1, b"hello")
    log = []
    shuttle(a, b, log=log)
    kinds = [("arp" if parse_frame(f).arp else "icmp") for _, f in log]
    assert kinds == ["arp", "arp", "icmp", "icmp"]  # request, reply, echo, echo reply
    reply = sock.receive()
    assert reply.seq == 1 and reply.payload == b"hello" and reply.ttl == 64


def test_arp_retries_then_gives_up_and_drops_the_queue():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    s = a.udp_socket()
    s.sendto(b"x", ("198.18.0.9", 9))
    requests = 0
    t = 0
    for _ in range(10):
        for f in frames_of(a, t):
            if parse_frame(f).arp:
                requests += 1
        nxt = a.poll_at()
        if nxt is None:
            break
        t = nxt
    assert requests == 3  # HostConfig.arp_retries
    assert a.counters["arp.resolution_failed"] == 1
    assert a.counters["ip.out_discards"] == 1
    assert not a.arp.pending
    with pytest.raises(OSError) as e:
        s.recvfrom()
    assert e.value.errno == errno.EHOSTUNREACH


def test_arp_queue_is_bounded():
    a = Host("a", config=HostConfig(arp_queue_limit=4))
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    s = a.udp_socket()
    for i in range(10):
        s.sendto(b"%d" % i, ("198.18.0.9", 9))
    frames_of(a)
    assert len(a.arp.pending[ip_aton("198.18.0.9")].packets) == 4
    assert a.counters["arp.queue_overflow"] == 6


def test_arp_entry_expires():
    a, b = make_pair(config=HostConfig(arp_timeout=10 * SEC))
    shuttle(a, b)
    a.ping_socket().send(B_IP, 1)
    shuttle(a, b)
    assert a.arp.lookup(ip_aton(B_IP), 1 * SEC) == B_MAC
    # After the grace period (retries x retry interval) with no answer it is gone.
    assert a.arp.lookup(ip_aton(B_IP), 14 * SEC) is None


def test_an_expired_entry_in_use_is_rechecked_by_unicast_not_dropped():
    a, b = make_pair(config=HostConfig(arp_timeout=10 * SEC))
    shuttle(a, b)
    ping = a.ping_socket()
    ping.send(B_IP, 1)
    shuttle(a, b)
    ping.receive()
    ping.send(B_IP, 2)  # the entry expired 0.5 s ago
    log = []
    shuttle(a, b, now=10 * SEC + SEC // 2, log=log)
    sent = [parse_frame(f) for name, f in log if name == "a"]
    probe = [f for f in sent if f.arp]
    assert len(probe) == 1 and probe[0].eth.dst == B_MAC  # unicast, to the known address
    assert any(f.icmp for f in sent)                        # the ping was not held back
    assert ping.receive().seq == 2
    assert a.arp.lookup(ip_aton(B_IP), 15 * SEC) == B_MAC   # b answered: fresh for 10 s more
    assert a.counters["arp.out_probes"] == 1


def test_arp_request_for_someone_else_does_not_create_an_entry():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    req = ethernet.build(b"\xff" * 6, B_MAC, 0x0806,
                         arp.build(arp.REQUEST, B_MAC, ip_aton(B_IP), b"\0" * 6, ip_aton("198.18.0.77")))
    a.receive(req, 0)
    assert frames_of(a) == []
    assert a.arp.lookup(ip_aton(B_IP), 0) is None


def _ip_frame(payload_ip: bytes, dst_mac=A_MAC) -> bytes:
    return ethernet.build(dst_mac, B_MAC, 0x0800, payload_ip, pad=False)


@pytest.mark.parametrize("mutate,counter", [
    (lambda d: bytes([0x65]) + d[1:], "ip.in_bad_version"),        # version 6
    (lambda d: bytes([0x44]) + d[1:], "ip.in_hdr_errors"),          # IHL 4
    (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "ip.in_bad_checksum"),
    (lambda d: d[:2] + (2000).to_bytes(2, "big") + d[4:], "ip.in_truncated"),
    (lambda d: d[:19], "ip.in_truncated"),
])
def test_ip_input_validation_counts_and_drops(mutate, counter):
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    good = ipv4.build(ip_aton(B_IP), ip_aton(A_IP), 1, icmp.build_echo(True, 1, 1, b"x"))
    a.receive(_ip_frame(mutate(good)), 0)
    assert a.counters[counter] == 1
    assert a.counters["icmp.in_echos"] == 0
    assert frames_of(a) == []


def test_ttl_zero_is_dropped():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    d = ipv4.build(ip_aton(B_IP), ip_aton(A_IP), 1, icmp.build_echo(True, 1, 1, b"x"), ttl=0)
    a.receive(_ip_frame(d), 0)
    assert a.counters["ip.in_ttl_zero"] == 1
    assert frames_of(a) == []


def test_datagram_for_another_address_is_not_ours():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    d = ipv4.build(ip_aton(B_IP), ip_aton("198.18.0.99"), 1, icmp.build_echo(True, 1, 1))
    a.receive(_ip_frame(d), 0)
    assert a.counters["ip.in_addr_errors"] == 1


def test_frame_for_another_mac_is_ignored():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    d = ipv4.build(ip_aton(B_IP), ip_aton(A_IP), 1, icmp.build_echo(True, 1, 1))
    a.receive(_ip_frame(d, dst_mac=b"\x02\0\0\0\0\x33"), 0)
    assert a.counters["eth.rx_not_for_us"] == 1
    assert a.counters["ip.in_receives"] == 0


def test_unknown_protocol_gets_protocol_unreachable():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    frames_of(a)
    a.arp.update(ip_aton(B_IP), B_MAC, 0, create=True)
    a.receive(_ip_frame(ipv4.build(ip_aton(B_IP), ip_aton(A_IP), 99, b"abcdefgh")), 0)
    (out,) = frames_of(a)
    f = parse_frame(out)
    assert f.icmp.type == icmp.DEST_UNREACHABLE and f.icmp.code == icmp.PROTO_UNREACHABLE
    assert a.counters["ip.in_unknown_protos"] == 1


def test_big_datagram_is_fragmented_and_reassembled():
    a, b = make_pair(mtu_a=576, mtu_b=1500)
    shuttle(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    client = a.udp_socket()
    payload = bytes(range(256)) * 20  # 5120 bytes
    client.sendto(payload, (B_IP, 7))
    log = []
    shuttle(a, b, log=log)
    raw = [f for name, f in log if name == "a" and parse_frame(f).ip]
    frags = [parse_frame(f) for f in raw]
    assert len(frags) == 10  # 5128 bytes of UDP in pieces of 552 (576 - 20, a multiple of 8)
    assert all(len(f) <= 576 + 14 for f in raw)
    assert all(f.ip.mf for f in frags[:-1]) and not frags[-1].ip.mf
    assert all(f.ip.frag_offset % 8 == 0 for f in frags)
    data, addr = server.recvfrom()
    assert data == payload and addr[0] == A_IP
    assert b.counters["ip.reasm_oks"] == 1


def test_out_of_order_fragments_reassemble():
    a, b = make_pair(mtu_a=576)
    warm(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    a.udp_socket().sendto(b"z" * 3000, (B_IP, 7))
    frames = frames_of(a)
    for f in reversed(frames):
        b.receive(f, 0)
    assert server.recv() == b"z" * 3000


def test_reassembly_times_out_with_icmp_time_exceeded():
    a, b = make_pair(mtu_a=576, config=HostConfig(reassembly_timeout=5 * SEC))
    warm(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    a.udp_socket().sendto(b"z" * 3000, (B_IP, 7))
    frames = frames_of(a)
    for f in frames[:-1]:  # the last fragment never arrives
        b.receive(f, 0)
    assert b.reassembler.pending
    assert b.poll_at() == 5 * SEC
    (out,) = frames_of(b, 5 * SEC)
    f = parse_frame(out)
    assert f.icmp.type == icmp.TIME_EXCEEDED and f.icmp.code == icmp.REASSEMBLY_TIME_EXCEEDED
    assert b.counters["ip.reasm_timeout"] == 1
    assert not b.reassembler.pending and b.reassembler.bytes_held == 0


def test_reassembly_memory_is_bounded():
    a, b = make_pair(mtu_a=576, config=HostConfig(reassembly_max_bytes=8000))
    warm(a, b)
    sock = a.udp_socket()
    for i in range(5):
        sock.sendto(bytes([i]) * 3000, (B_IP, 7))
    for f in frames_of(a):
        fr = parse_frame(f)
        if fr.ip and fr.ip.mf:  # never the last fragment: nothing completes
            b.receive(f, 0)
    assert b.reassembler.bytes_held <= 8000
    assert b.counters["ip.reasm_overflow"] >= 1


def test_df_datagram_too_big_is_refused():
    a, b = make_pair()
    shuttle(a, b)
    assert a.ip_output(ip_aton(A_IP), ip_aton(B_IP), 17, b"x" * 2000, 0, df=True) is False
    assert a.counters["ip.frag_fails"] == 1


def test_udp_to_closed_port_is_refused():
    a, b = make_pair()
    shuttle(a, b)
    s = a.udp_socket()
    s.connect((B_IP, 9))
    s.send(b"anyone?")
    shuttle(a, b)
    assert b.counters["udp.no_ports"] == 1
    assert b.counters["icmp.out_dest_unreachs"] == 1
    with pytest.raises(ConnectionRefusedError):
        s.recv()


def test_udp_bind_conflict_and_connected_filter():
    a, b = make_pair()
    shuttle(a, b)
    s1 = b.udp_socket()
    s1.bind(("0.0.0.0", 5000))
    with pytest.raises(OSError) as e:
        b.udp_socket().bind((B_IP, 5000))
    assert e.value.errno == errno.EADDRINUSE
    s1.connect((A_IP, 6000))
    other = a.udp_socket()
    other.bind(("0.0.0.0", 6001))
    other.sendto(b"not from the peer", (B_IP, 5000))
    shuttle(a, b)
    with pytest.raises(BlockingIOError):
        s1.recv()


def test_udp_checksum_error_is_counted():
    a, b = make_pair()
    shuttle(a, b)
    s = b.udp_socket()
    s.bind(("0.0.0.0", 7))
    d = bytearray(udp.build(ip_aton(A_IP), ip_aton(B_IP), 1000, 7, b"payload"))
    d[-1] ^= 0x01
    b.receive(ethernet.build(B_MAC, A_MAC, 0x0800, ipv4.build(ip_aton(A_IP), ip_aton(B_IP), 17, bytes(d))), 0)
    assert b.counters["udp.in_csum_errors"] == 1
    with pytest.raises(BlockingIOError):
        s.recv()


def test_default_gateway_is_resolved_for_off_link_destinations():
    a = Host("a")
    a.add_interface(A_MAC, A_IP + "/24")
    a.routes.add_default("198.18.0.254")
    frames_of(a)
    a.udp_socket().sendto(b"x", ("198.19.5.5", 53))
    (req,) = frames_of(a)
    assert parse_frame(req).arp.tpa == ip_aton("198.18.0.254")
    with pytest.raises(OSError) as e:
        Host("lonely").udp_socket().sendto(b"x", ("198.19.5.5", 53))
    assert e.value.errno == errno.ENETUNREACH


def test_two_hosts_in_one_process_share_nothing():
    a, b = make_pair()
    a.counters.incr("test.only_a")
    assert b.counters["test.only_a"] == 0
    assert a.arp is not b.arp and a.routes is not b.routes and a.tcp is not b.tcp


# ---------------------------------------------------------------------- hostile fragments
def _frag(src, ident, offset, data, more, proto=17, dst=B_IP):
    ip = ipv4.build(ip_aton(src), ip_aton(dst), proto, data, ident=ident, mf=more,
                    frag_offset=offset)
    return ethernet.build(B_MAC, A_MAC, 0x0800, ip, pad=False)


def _udp_fragments(src, ident, payload, size=1480, dport=7):
    dgram = udp.build(ip_aton(src), ip_aton(B_IP), 5555, dport, payload)
    out = []
    for off in range(0, len(dgram), size):
        out.append(_frag(src, ident, off, dgram[off:off + size], off + size < len(dgram)))
    return out


def test_four_tiny_fragments_far_out_do_not_block_reassembly():
    """Memory is accounted by the bytes a pending datagram holds, not by its highest
    offset: four 8-byte fragments near offset 65,000 used to pin the whole budget."""
    a, b = make_pair()
    warm(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    for i in range(4):
        b.receive(_frag("198.18.0.66", 100 + i, 65000 - 8 * i, b"A" * 8, True), 0)
    assert b.reassembler.bytes_held < 1024
    payload = bytes(range(256)) * 200                 # 51,200 bytes in 35 fragments
    for f in _udp_fragments(A_IP, 7, payload):
        b.receive(f, 1 * SEC)
    assert server.recv() == payload
    assert b.counters["ip.reasm_oks"] == 1


def test_fragment_flood_from_one_source_does_not_starve_another():
    a, b = make_pair()
    warm(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    payload = b"legit" * 6000                         # 30,000 bytes
    legit = _udp_fragments(A_IP, 1, payload)
    got = []
    t = 0
    for k, f in enumerate(legit):
        for i in range(300):                          # 300 flood fragments between each
            ident = (k * 300 + i) & 0xFFFF
            b.receive(_frag("198.18.0.66", ident, 0, b"F" * 1480, True), t)
            t += 1000
            assert b.reassembler.bytes_held <= 256 * 1024
            assert len(b.reassembler.pending) <= 64
        b.receive(f, t)
    got = server.recv()
    assert got == payload
    assert b.counters["ip.reasm_evicted"] > 0


def test_overlapping_fragments_with_different_bytes_discard_the_datagram():
    """RFC 1858 / RFC 3128: overlaps that rewrite data are an attack (on filters that
    looked at the first copy); the whole datagram goes. Identical overlaps are fine."""
    a, b = make_pair()
    warm(a, b)
    server = b.udp_socket()
    server.bind(("0.0.0.0", 7))
    payload = bytes(range(200)) * 10
    dgram = udp.build(ip_aton(A_IP), ip_aton(B_IP), 5555, 7, payload)
    b.receive(_frag(A_IP, 9, 0, dgram[:1008], True), 0)
    b.receive(_frag(A_IP, 9, 1000, dgram[1000:], False), 0)        # same bytes again: fine
    assert server.recv() == payload
    b.receive(_frag(A_IP, 10, 0, dgram[:1008], True), 0)
    evil = bytearray(dgram[1000:])
    evil[3] ^= 0xFF                                                   # byte 1003 differs
    b.receive(_frag(A_IP, 10, 1000, bytes(evil), False), 0)
    assert b.counters["ip.reasm_overlap_conflicts"] == 1
    assert not b.reassembler.pending
    with pytest.raises(BlockingIOError):
        server.recv()


def test_non_final_fragment_of_odd_length_is_dropped():
    a, b = make_pair()
    warm(a, b)
    b.receive(_frag(A_IP, 11, 0, b"x" * 1001, True), 0)             # MF=1, 1001 % 8 != 0
    assert b.counters["ip.frag_bad_length"] == 1
    assert not b.reassembler.pending


def test_pending_arp_resolutions_are_bounded():
    """Answers to spoofed on-link sources each start an ARP resolution; their number is
    bounded like the ARP cache itself (a /16 holds 65,534 addresses)."""
    a = Host("a", config=HostConfig(arp_max_pending=100))
    a.add_interface(A_MAC, "198.18.0.1/16")
    frames_of(a)
    s = a.udp_socket()
    for i in range(1000):
        s.sendto(b"x", (f"198.18.{i // 250 + 1}.{i % 250 + 1}", 9))
    frames_of(a)
    assert len(a.arp.pending) == 100
    assert a.counters["arp.pending_overflow"] == 900


def test_layer3_interface_takes_and_gives_bare_ip_without_arp():
    h = Host("h", config=HostConfig())
    h.add_interface(None, "198.18.12.2/24", layer3=True)
    assert h.transmit(0) == []                            # no gratuitous ARP on a TUN
    request = ipv4.build(ip_aton("198.18.12.1"), ip_aton("198.18.12.2"), 1,
                         icmp.build_echo(True, 7, 1, b"ping"), ttl=64)
    h.receive(request, 0, 0)
    ((ifindex, out),) = h.transmit(0)
    hdr, body = ipv4.parse(out)                           # a bare datagram, no Ethernet header
    assert ifindex == 0 and hdr.dst == ip_aton("198.18.12.1")
    msg = icmp.parse(body)
    assert msg.type == icmp.ECHO_REPLY and bytes(msg.payload) == b"ping"
    assert h.counters["arp.out_requests"] == 0


def test_no_arp_on_a_layer3_interface():
    h = Host("h")
    h.add_interface(None, "198.18.12.2/24", layer3=True)
    with pytest.raises(OSError) as exc:
        h.arp_resolve("198.18.12.1", 0)
    assert exc.value.errno == errno.EOPNOTSUPP and h.transmit(0) == []
