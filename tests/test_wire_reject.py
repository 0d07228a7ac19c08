"""What parse_frame must refuse, and with which counter.

* Every prefix of valid frames (ARP, ICMP echo, ICMP frag-needed with its quoted datagram,
  UDP, TCP with options, IP with options; padded and unpadded): a prefix that still holds
  the whole ARP packet / the whole IP datagram (its total length) is a legitimate frame
  whose padding was cut and decodes to the same fields; any shorter prefix is rejected
  with the exact counter. The same with an FCS (stale: rejected; recomputed: as above).
* A transport segment cut short inside a consistent IP datagram.
* Corrupted checksums (IP header, ICMP, UDP, TCP) -> the right ``.counter``; UDP checksum
  zero means "none" and is accepted.
* Bad header fields: version, IHL, total length, reserved flag, TCP data offset, UDP length.
"""

from __future__ import annotations


import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wirestack.wire import MalformedPacket, arp, checksum, ethernet, icmp, ipv4, parse_frame, tcp, udp
from wirestack.wire.addr import ip_aton, mac_aton
from wire_reference import ones_sum, pseudo_header

MAC_A = mac_aton("02:00:00:00:00:01")
MAC_B = mac_aton("02:00:00:00:00:02")
IP_A = ip_aton("198.18.0.1")
IP_B = ip_aton("198.18.0.2")
PAYLOAD = bytes(range(1, 200))  # no zero bytes: cutting any of it changes every checksum


def eth_ip(proto, seg, options=b"", **kw) -> bytes:
    return ethernet.build(MAC_B, MAC_A, ethernet.ETH_P_IPV4,
                          ipv4.build(IP_A, IP_B, proto, seg, options=options, **kw))


def valid_frames():
    """(name, frame, length of the meaningful part incl. the Ethernet header)."""
    out = []
    a = arp.build(arp.REQUEST, MAC_A, IP_A, bytes(6), IP_B)
    out.append(("arp", ethernet.build(b"\xff" * 6, MAC_A, 0x0806, a), 14 + 28))
    out.append(("arp-unpadded", ethernet.build(b"\xff" * 6, MAC_A, 0x0806, a, pad=False), 42))
    for n in (0, 5, 56):
        seg = icmp.build_echo(True, 0x77, n, PAYLOAD[:n])
        out.append((f"icmp-echo-{n}", eth_ip(1, seg), 14 + 20 + len(seg)))
    offending = ipv4.build(IP_A, IP_B, 17, udp.build(IP_A, IP_B, 5000, 53, PAYLOAD), df=True)
    seg = icmp.build_error(icmp.DEST_UNREACHABLE, icmp.FRAG_NEEDED, offending, next_hop_mtu=576)
    out.append(("icmp-frag-needed", eth_ip(1, seg), 14 + 20 + len(seg)))
    for n in (0, 1, 17, 120):
        seg = udp.build(IP_A, IP_B, 1234, 53, PAYLOAD[:n])
        out.append((f"udp-{n}", eth_ip(17, seg), 14 + 20 + len(seg)))
    opts = tcp.encode_options(mss=1460, wscale=7, sack_permitted=True, ts=(123, 0))
    seg = tcp.build(IP_A, IP_B, 40000, 80, 1, 0, tcp.SYN, 64240, options=opts)
    out.append(("tcp-syn-options", eth_ip(6, seg, df=True), 14 + 20 + len(seg)))
    opts = tcp.encode_options(ts=(5, 6), sack_blocks=[(1, 2), (3, 4), (5, 6)])
    seg = tcp.build(IP_A, IP_B, 40000, 80, 1, 9, tcp.ACK | tcp.PSH, 500, PAYLOAD[:33], options=opts)
    out.append(("tcp-sack-data", eth_ip(6, seg), 14 + 20 + len(seg)))
    # IP options: record route (7), 3 slots, + EOL padding; and router alert (148) with TCP
    rr = bytes([7, 15, 4]) + bytes(12)
    seg = udp.build(IP_A, IP_B, 7, 7, b"options!")
    out.append(("ip-options-udp", eth_ip(17, seg, options=rr), 14 + 24 + 12 + len(seg)))
    seg = tcp.build(IP_A, IP_B, 1, 2, 3, 4, tcp.ACK, 5, b"x")
    out.append(("ip-options-tcp", eth_ip(6, seg, options=b"\x94\x04\x00\x00"), 14 + 24 + len(seg)))
    return out


FRAMES = valid_frames()
IDS = [name for name, _, _ in FRAMES]


def summary(f):
    """Every decoded field of a frame, to compare a prefix's decode with the full frame's."""
    def fields(x):
        if x is None:
            return None
        return {k: getattr(x, k) for k in x.__slots__ if k != "payload"} | (
            {"payload": bytes(x.payload)} if hasattr(x, "payload") else {})
    return (fields(f.eth), fields(f.arp), fields(f.ip), fields(f.icmp), fields(f.udp),
            fields(f.tcp), bytes(f.payload))


def expected_counter(name: str, k: int) -> str:
    if k < 14:
        return "eth.rx_runts"
    if name.startswith("arp"):
        return "arp.in_malformed"
    return "ip.in_truncated"  # shorter than 20 bytes, or than the total length


@pytest.mark.parametrize("name, frame, needed", FRAMES, ids=IDS)
def test_every_prefix(name, frame, needed):
    full = summary(parse_frame(frame))
    for k in range(len(frame) + 1):
        prefix = frame[:k]
        if k >= needed:
            # Only Ethernet padding was cut: the frame is the same frame.
            assert summary(parse_frame(prefix)) == full, k
            assert summary(parse_frame(memoryview(prefix))) == full, k
            assert summary(parse_frame(bytearray(prefix))) == full, k
        else:
            with pytest.raises(MalformedPacket) as ei:
                parse_frame(prefix)
            assert ei.value.counter == expected_counter(name, k), (k, ei.value.reason)
            assert ei.value.reason and ei.value.__cause__ is None, k  # a real check, not a crash


@pytest.mark.parametrize("name, frame, needed", FRAMES, ids=IDS)
def test_every_prefix_with_fcs(name, frame, needed):
    full = summary(parse_frame(frame))
    with_fcs = ethernet.add_fcs(frame)
    assert summary(parse_frame(with_fcs, fcs=True)) == full
    for k in range(len(with_fcs)):
        # the original FCS cut off or cut into: never accepted
        with pytest.raises(MalformedPacket) as ei:
            parse_frame(with_fcs[:k], fcs=True)
        assert ei.value.counter == ("eth.rx_runts" if k < 18 else "eth.rx_fcs_errors"), k
    for k in range(len(frame) + 1):
        # a short frame received intact (its own FCS): same rules as without an FCS
        prefix = ethernet.add_fcs(frame[:k])
        if k >= needed:
            assert summary(parse_frame(prefix, fcs=True)) == full, k
        else:
            with pytest.raises(MalformedPacket) as ei:
                parse_frame(prefix, fcs=True)
            assert ei.value.counter == expected_counter(name, k), k


def test_prefix_expectations_cover_padding():
    # sanity of the table: small frames are padded, so some prefixes are legitimately valid
    padded = [name for name, frame, needed in FRAMES if len(frame) > needed]
    assert {"arp", "icmp-echo-0", "udp-0", "udp-17"} <= set(padded)


# --------------------------------------------------------------------------- transport cut short

TRANSPORTS = [
    ("icmp", 1, icmp.build_echo(False, 1, 2, PAYLOAD[:40])),
    ("udp", 17, udp.build(IP_A, IP_B, 9, 9, PAYLOAD[:40])),
    ("tcp", 6, tcp.build(IP_A, IP_B, 9, 9, 1, 1, tcp.ACK, 9, PAYLOAD[:40],
                         options=tcp.encode_options(ts=(1, 2), sack_blocks=[(3, 4)]))),
]


@pytest.mark.parametrize("kind, proto, seg", TRANSPORTS, ids=[t[0] for t in TRANSPORTS])
def test_transport_truncated_inside_consistent_ip(kind, proto, seg):
    """The IP datagram is well-formed (total length and checksum agree) but the transport
    segment in it was cut: header errors, or a checksum that no longer matches."""
    for cut in range(len(seg)):
        frame = eth_ip(proto, seg[:cut])
        part = seg[:cut]
        if kind == "icmp":
            if cut < 8:
                counter = "icmp.in_malformed"
            else:
                counter = None if ones_sum(part) == 0xFFFF else "icmp.in_csum_errors"
        elif kind == "udp":
            counter = "udp.in_hdr_errors"  # < 8 bytes, or length field > what arrived
        else:
            hl = (seg[12] >> 4) * 4
            if cut < hl:
                counter = "tcp.in_hdr_errors"
            else:
                ok = ones_sum(pseudo_header(IP_A, IP_B, 6, cut) + part) == 0xFFFF
                counter = None if ok else "tcp.in_csum_errors"
        if counter is None:
            parse_frame(frame)
        else:
            with pytest.raises(MalformedPacket) as ei:
                parse_frame(frame)
            assert ei.value.counter == counter, cut
        # without checksum verification only the structural errors remain
        if counter and not counter.endswith("csum_errors"):
            with pytest.raises(MalformedPacket):
                parse_frame(frame, verify_checksums=False)
        else:
            parse_frame(frame, verify_checksums=False)


# --------------------------------------------------------------------------- checksums

def fix_ip_checksum(frame: bytearray) -> None:
    hl = (frame[14] & 0x0F) * 4
    frame[24:26] = b"\x00\x00"
    frame[24:26] = checksum.internet_checksum(bytes(frame[14:14 + hl])).to_bytes(2, "big")


def change_word(buf: bytearray, off: int, new: int) -> bool:
    """Replace the 16-bit word at an even offset; False when the ones'-complement sum would
    not change (0000 <-> ffff, the one corruption this checksum cannot see)."""
    old = int.from_bytes(buf[off:off + 2], "big")
    if (new - old) % 0xFFFF == 0:
        return False
    buf[off:off + 2] = new.to_bytes(2, "big")
    return True


@st.composite
def transport_frame(draw, kinds=("icmp", "udp", "tcp")):
    kind = draw(st.sampled_from(kinds))
    src, dst = draw(st.binary(min_size=4, max_size=4)), draw(st.binary(min_size=4, max_size=4))
    payload = draw(st.binary(max_size=60))
    p1, p2 = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF))
    if kind == "icmp":
        proto, seg = 1, icmp.build_echo(draw(st.booleans()), p1, p2, payload)
    elif kind == "udp":
        proto, seg = 17, udp.build(src, dst, p1, p2, payload)
    else:
        opts = tcp.encode_options(mss=draw(st.one_of(st.none(), st.integers(0, 0xFFFF))),
                                  ts=draw(st.one_of(st.none(), st.tuples(st.integers(0, 2**32 - 1),
                                                                         st.integers(0, 2**32 - 1)))))
        proto, seg = 6, tcp.build(src, dst, p1, p2, draw(st.integers(0, 2**32 - 1)),
                                  draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 255)),
                                  draw(st.integers(0, 0xFFFF)), payload, options=opts)
    ip_opts = draw(st.sampled_from([b"", b"\x01\x01\x01\x00", bytes([7, 7, 4]) + bytes(5)]))
    frame = ethernet.build(draw(st.binary(min_size=6, max_size=6)), MAC_A, 0x0800,
                           ipv4.build(src, dst, proto, seg, options=ip_opts,
                                      ttl=draw(st.integers(0, 255)), ident=draw(st.integers(0, 0xFFFF))))
    return kind, bytearray(frame), 14 + 20 + len(ip_opts)


EX = settings(max_examples=200, deadline=None)


@EX
@given(transport_frame(), st.sampled_from([4, 8, 10, 12, 14, 16, 18]), st.integers(0, 0xFFFF))
def test_corrupt_ip_header_checksum(tf, off, new):
    kind, frame, _ = tf
    parse_frame(bytes(frame))
    assume(change_word(frame, 14 + off, new))  # ident, ttl/proto, checksum, addresses
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(bytes(frame))
    assert ei.value.counter == "ip.in_bad_checksum"


@EX
@given(transport_frame(), st.data())
def test_corrupt_transport_checksum(tf, data):
    kind, frame, t0 = tf
    # any word of the transport header or data, except the fields whose change is a
    # structural error seen before the checksum (TCP data offset, UDP length)
    skip = {"tcp": {12}, "udp": {4}, "icmp": set()}[kind]
    end = 14 + int.from_bytes(frame[16:18], "big")  # not into the Ethernet padding
    offs = [o for o in range(0, end - t0 - 1, 2) if o not in skip]
    off = data.draw(st.sampled_from(offs))
    assume(change_word(frame, t0 + off, data.draw(st.integers(0, 0xFFFF))))
    if kind == "udp" and frame[t0 + 6:t0 + 8] == b"\x00\x00":
        parse_frame(bytes(frame))  # the corruption wrote "no checksum": accepted
        return
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(bytes(frame))
    assert ei.value.counter == {"icmp": "icmp.in_csum_errors", "udp": "udp.in_csum_errors",
                                "tcp": "tcp.in_csum_errors"}[kind]
    # the checksum is checked before the options are decoded; unverified, a corrupted option
    # may still be a structural error, anything else decodes
    hl = (frame[t0 + 12] >> 4) * 4
    if kind == "tcp" and 20 <= off + 1 and off < hl:
        try:
            parse_frame(bytes(frame), verify_checksums=False)
        except MalformedPacket as e:
            assert e.counter == "tcp.in_bad_options"
    else:
        parse_frame(bytes(frame), verify_checksums=False)


@EX
@given(transport_frame(kinds=("udp", "tcp")), st.integers(0, 3), st.integers(1, 255))
def test_pseudo_header_covers_addresses(tf, i, x):
    """Change the IP source address (and fix the IP header checksum): the UDP/TCP checksum,
    which covers the pseudo-header, must now fail."""
    kind, frame, t0 = tf
    frame[26 + i] ^= x
    fix_ip_checksum(frame)
    # (one changed byte moves its word by 1..ff00, never by a multiple of ffff: always seen)
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(bytes(frame))
    assert ei.value.counter == f"{kind}.in_csum_errors"


@EX
@given(transport_frame(kinds=("udp",)), st.data())
def test_udp_zero_checksum_accepted(tf, data):
    kind, frame, t0 = tf
    frame[t0 + 6:t0 + 8] = b"\x00\x00"
    f = parse_frame(bytes(frame))
    assert f.udp.checksum == 0
    # the data can be anything then: nothing is verified
    if len(frame) - t0 > 8 + 2:
        off = data.draw(st.integers(t0 + 8, len(frame) - 1))
        frame[off] ^= 0x5A
        assert parse_frame(bytes(frame)).udp.checksum == 0


def test_udp_ffff_checksum_is_a_real_checksum():
    # all ones is the computed value 0 sent as ffff; verified like any other value
    c = udp.build(IP_A, IP_B, 1, 2, b"\x00\x00")[6:8]
    seg = udp.build(IP_A, IP_B, 1, 2, c)  # adding c to the sum makes it ffff: checksum 0
    assert seg[6:8] == b"\xff\xff"
    assert parse_frame(eth_ip(17, seg)).udp.checksum == 0xFFFF
    bad = bytearray(seg)
    bad[8] ^= 1
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(eth_ip(17, bytes(bad)))
    assert ei.value.counter == "udp.in_csum_errors"


# --------------------------------------------------------------------------- bad header fields

UDP_FRAME = eth_ip(17, udp.build(IP_A, IP_B, 1, 2, b"hello"))
TCP_FRAME = eth_ip(6, tcp.build(IP_A, IP_B, 1, 2, 3, 4, tcp.ACK, 5, b"data",
                                options=tcp.encode_options(mss=1400)))


def tamper(frame: bytes, off: int, value: bytes, fix_ip=True) -> bytes:
    b = bytearray(frame)
    b[off:off + len(value)] = value
    if fix_ip:
        fix_ip_checksum(b)
    return bytes(b)


@pytest.mark.parametrize("off, value, counter", [
    (14, b"\x65", "ip.in_bad_version"),         # version 6
    (14, b"\x05", "ip.in_bad_version"),         # version 0
    (14, b"\x44", "ip.in_hdr_errors"),          # IHL 4
    (14, b"\x40", "ip.in_hdr_errors"),          # IHL 0
    (16, b"\x00\x13", "ip.in_hdr_errors"),      # total length 19 < 20
    (16, b"\x00\x00", "ip.in_hdr_errors"),      # total length 0
    (16, b"\x05\xdc", "ip.in_truncated"),       # total length 1500 > what arrived
    (14, b"\x46", "udp.in_hdr_errors"),         # IHL 6: the first UDP word becomes an IP
                                                # option, the 'UDP header' starts 4 bytes late
                                                # and its length field is "he" = 26725
    (20, b"\x80\x00", "ip.in_hdr_errors"),      # reserved flag
])
def test_bad_ip_fields(off, value, counter):
    frame = tamper(UDP_FRAME, off, value)
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(frame)
    assert ei.value.counter == counter, ei.value.reason


def test_ihl_beyond_total_length():
    frame = tamper(UDP_FRAME, 14, b"\x4f")  # IHL 15 = 60 bytes > total length 33
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(frame)
    assert ei.value.counter == "ip.in_hdr_errors"


@pytest.mark.parametrize("off_words", [0, 1, 4, 8, 15])  # segment is 28 bytes
def test_bad_tcp_data_offset(off_words):
    frame = tamper(TCP_FRAME, 34 + 12, bytes([off_words << 4]), fix_ip=False)
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(frame, verify_checksums=False)
    assert ei.value.counter == "tcp.in_hdr_errors"


@pytest.mark.parametrize("length", [0, 7, 14, 0xFFFF])
def test_bad_udp_length(length):
    frame = tamper(UDP_FRAME, 34 + 4, length.to_bytes(2, "big"), fix_ip=False)
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(frame, verify_checksums=False)
    assert ei.value.counter == "udp.in_hdr_errors"


def test_udp_length_shorter_than_ip_payload():
    # A UDP length smaller than the IP payload: the rest is not UDP data (RFC 768 length).
    seg = bytearray(udp.build(IP_A, IP_B, 1, 2, b"abcdef"))
    seg[4:6] = (8 + 3).to_bytes(2, "big")
    seg[6:8] = b"\x00\x00"
    f = parse_frame(eth_ip(17, bytes(seg)))
    assert f.udp.length == 11 and bytes(f.payload) == b"abc"


def test_bad_tcp_option_length_in_frame():
    seg = tcp.build(IP_A, IP_B, 1, 2, 3, 4, tcp.ACK, 5, options=b"\x02\x00\x00\x00")
    with pytest.raises(MalformedPacket) as ei:
        parse_frame(eth_ip(6, seg))
    assert ei.value.counter == "tcp.in_bad_options"


def test_tcp_build_rejects_unaligned_or_long_options():
    for opts in (b"\x01", b"\x01" * 6, b"\x01" * 44):
        with pytest.raises(ValueError):
            tcp.build(IP_A, IP_B, 1, 2, 3, 4, tcp.ACK, 5, options=opts)
    with pytest.raises(ValueError):
        tcp.TcpOptions(mss=1460, unknown=((200, bytes(36)),)).encode()
