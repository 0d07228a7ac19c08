"""Hypothesis round-trips for every header type.

Two directions each:
  * build -> parse gives back the same fields;
  * parse -> build gives back the same bytes, for valid inputs produced by an independent
    encoder written here with struct and a slow word-by-word checksum (so a shared mistake
    in the codec's own build and parse cannot cancel out).
TCP options get their own generators: every known option, unknown kinds, 1-4 SACK blocks,
NOP/EOL padding in arbitrary places.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirestack.wire import MalformedPacket, arp, ethernet, icmp, ipv4, parse_frame, tcp, udp
from wire_reference import EXAMPLES, internet_checksum, ip4, mac, u8, u16, u32



# --------------------------------------------------------------------------- Ethernet

@EXAMPLES
@given(mac, mac, st.integers(0x0600, 0xFFFF), st.binary(max_size=100), st.booleans())
def test_ethernet_roundtrip(dst, src, ethertype, payload, pad):
    frame = ethernet.build(dst, src, ethertype, payload, pad=pad)
    assert frame[:14] == dst + src + ethertype.to_bytes(2, "big")
    assert len(frame) == (max(60, 14 + len(payload)) if pad else 14 + len(payload))
    hdr, rest = ethernet.parse(frame)
    assert hdr == ethernet.EthernetHeader(dst, src, ethertype)
    assert bytes(rest[:len(payload)]) == payload
    assert not any(rest[len(payload):])  # padding is zeros
    assert ethernet.build(hdr.dst, hdr.src, hdr.ethertype, rest, pad=False) == frame


@EXAMPLES
@given(st.binary(min_size=14, max_size=80))
def test_ethernet_parse_build_bytes(raw):
    if int.from_bytes(raw[12:14], "big") < 0x0600:
        with pytest.raises(MalformedPacket):
            ethernet.parse(raw)
        return
    hdr, rest = ethernet.parse(raw)
    assert ethernet.build(hdr.dst, hdr.src, hdr.ethertype, rest, pad=False) == raw


# --------------------------------------------------------------------------- ARP

@EXAMPLES
@given(u16, mac, ip4, mac, ip4, st.binary(max_size=20))
def test_arp_roundtrip(op, sha, spa, tha, tpa, trailer):
    raw = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, spa, tha, tpa)
    assert arp.build(op, sha, spa, tha, tpa) == raw
    pkt = arp.parse(raw + trailer)  # padding after the 28 bytes is ignored
    assert (pkt.op, pkt.sha, pkt.spa, pkt.tha, pkt.tpa) == (op, sha, spa, tha, tpa)
    assert pkt.build() == raw


# --------------------------------------------------------------------------- IPv4

ip_options = st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))


@st.composite
def ipv4_fields(draw):
    return dict(
        tos=draw(u8), ident=draw(u16), df=draw(st.booleans()), mf=draw(st.booleans()),
        frag_offset=draw(st.integers(0, 0x1FFF)) * 8, ttl=draw(u8), proto=draw(u8),
        src=draw(ip4), dst=draw(ip4), options=draw(ip_options),
        payload=draw(st.binary(max_size=64)))


def ref_ipv4(f) -> bytes:
    """Independent encoder: RFC 791 layout with struct, slow checksum."""
    hl = 20 + len(f["options"])
    frag = (0x4000 if f["df"] else 0) | (0x2000 if f["mf"] else 0) | (f["frag_offset"] // 8)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | hl // 4, f["tos"], hl + len(f["payload"]),
                       f["ident"], frag, f["ttl"], f["proto"], 0, f["src"], f["dst"]) + f["options"]
    c = internet_checksum(head)
    return head[:10] + c.to_bytes(2, "big") + head[12:] + f["payload"]


@EXAMPLES
@given(ipv4_fields(), st.binary(max_size=30))
def test_ipv4_roundtrip(f, padding):
    raw = ref_ipv4(f)
    kw = {k: f[k] for k in ("ttl", "ident", "df", "mf", "frag_offset", "tos", "options")}
    built = ipv4.build(f["src"], f["dst"], f["proto"], f["payload"], **kw)
    assert built == raw
    hdr, payload = ipv4.parse(raw + padding)  # link-layer padding is cut off
    assert bytes(payload) == f["payload"]
    assert (hdr.ihl, hdr.header_length, hdr.total_length, hdr.checksum) == (
        (20 + len(f["options"])) // 4, 20 + len(f["options"]), len(raw),
        int.from_bytes(raw[10:12], "big"))
    for k in ("tos", "ident", "df", "mf", "frag_offset", "ttl", "proto", "src", "dst", "options"):
        assert getattr(hdr, k) == f[k], k
    assert hdr.is_fragment == (f["mf"] or f["frag_offset"] != 0)
    # parse -> build -> the same bytes
    again = ipv4.build_header(hdr.src, hdr.dst, hdr.proto, hdr.total_length - hdr.header_length,
                              ttl=hdr.ttl, ident=hdr.ident, df=hdr.df, mf=hdr.mf,
                              frag_offset=hdr.frag_offset, tos=hdr.tos, options=hdr.options)
    assert again + bytes(payload) == raw


@EXAMPLES
@given(st.binary(min_size=1, max_size=39))
def test_ipv4_unaligned_options_padded_with_eol(options):
    hdr_bytes = ipv4.build_header(b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 17, 0, options=options)
    assert len(hdr_bytes) % 4 == 0
    hdr, _ = ipv4.parse(hdr_bytes)
    assert hdr.options[:len(options)] == options and not any(hdr.options[len(options):])


def test_ipv4_build_rejects_bad_arguments():
    a = b"\x01\x02\x03\x04"
    with pytest.raises(ValueError):
        ipv4.build_header(a, a, 6, 0, options=bytes(44))
    with pytest.raises(ValueError):
        ipv4.build_header(a, a, 6, 0, frag_offset=5)
    with pytest.raises(ValueError):  # 65536 >> 3 would land on the MF bit
        ipv4.build_header(a, a, 6, 0, frag_offset=65536)
    hdr, _ = ipv4.parse(ipv4.build_header(a, a, 6, 0, frag_offset=0xFFF8))
    assert hdr.frag_offset == 0xFFF8 and not hdr.mf and not hdr.df
    with pytest.raises(ValueError):
        ipv4.build_header(a, a, 6, 65536 - 20)


# --------------------------------------------------------------------------- ICMP

@EXAMPLES
@given(u8, u8, st.binary(min_size=4, max_size=4), st.binary(max_size=80))
def test_icmp_roundtrip(type_, code, rest, payload):
    body = bytes([type_, code]) + b"\x00\x00" + rest + payload
    raw = body[:2] + internet_checksum(body).to_bytes(2, "big") + body[4:]
    assert icmp.build(type_, code, rest, payload) == raw
    msg = icmp.parse(raw)
    assert (msg.type, msg.code, msg.checksum, msg.rest, bytes(msg.payload)) == (
        type_, code, int.from_bytes(raw[2:4], "big"), rest, payload)
    assert icmp.build(msg.type, msg.code, msg.rest, msg.payload) == raw


@EXAMPLES
@given(st.booleans(), u16, u16, st.binary(max_size=80))
def test_icmp_echo_roundtrip(request, ident, seq, payload):
    raw = icmp.build_echo(request, ident, seq, payload)
    msg = icmp.parse(raw)
    assert msg.type == (8 if request else 0) and msg.code == 0
    assert (msg.ident, msg.seq, bytes(msg.payload)) == (ident, seq, payload)


@EXAMPLES
@given(ipv4_fields(), st.sampled_from([(3, 0), (3, 1), (3, 3), (3, 4), (11, 0), (11, 1), (12, 0)]),
       u16)
def test_icmp_error_quotes_header_and_8_bytes(f, type_code, mtu):
    f["payload"] = f["payload"] + bytes(8)
    offending = ref_ipv4(f)
    hl = 20 + len(f["options"])
    raw = icmp.build_error(type_code[0], type_code[1], offending, next_hop_mtu=mtu)
    msg = icmp.parse(raw)
    assert msg.is_error and bytes(msg.payload) == offending[:hl + 8]
    if type_code == (3, 4):
        assert msg.next_hop_mtu == mtu
    else:
        assert msg.rest == bytes(4)
    q, data = msg.quoted()
    for k in ("tos", "ident", "df", "mf", "frag_offset", "ttl", "proto", "src", "dst", "options"):
        assert getattr(q, k) == f[k], k
    assert q.total_length == len(offending) and bytes(data) == offending[hl:hl + 8]


# --------------------------------------------------------------------------- UDP

def ref_udp(src, dst, sport, dport, payload) -> bytes:
    length = 8 + len(payload)
    head = struct.pack("!HHHH", sport, dport, length, 0)
    c = internet_checksum(src + dst + struct.pack("!BBH", 0, 17, length) + head + payload)
    return head[:6] + (c or 0xFFFF).to_bytes(2, "big") + payload


@EXAMPLES
@given(ip4, ip4, u16, u16, st.binary(max_size=100), st.binary(max_size=10))
def test_udp_roundtrip(src, dst, sport, dport, payload, trailer):
    raw = ref_udp(src, dst, sport, dport, payload)
    assert udp.build(src, dst, sport, dport, payload) == raw
    hdr, data = udp.parse(raw + trailer, src, dst)  # bytes past the UDP length are ignored
    assert (hdr.sport, hdr.dport, hdr.length) == (sport, dport, 8 + len(payload))
    assert hdr.checksum == int.from_bytes(raw[6:8], "big") != 0
    assert bytes(data) == payload
    assert udp.build(src, dst, hdr.sport, hdr.dport, data) == raw


# --------------------------------------------------------------------------- TCP options

KNOWN_KINDS = {0, 1, 2, 3, 4, 5, 8}
unknown_kind = st.integers(6, 255).filter(lambda k: k not in KNOWN_KINDS)
sack_blocks = st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)


@st.composite
def option_layout(draw):
    """A list of (expected-field-update, bytes) items laid out in any order, each known
    option at most once, NOPs anywhere, total <= 40 bytes. Returns (raw, expected)."""
    items = []
    if draw(st.booleans()):
        v = draw(u16)
        items.append(({"mss": v}, struct.pack("!BBH", 2, 4, v)))
    if draw(st.booleans()):
        v = draw(u8)
        items.append(({"wscale": v}, bytes([3, 3, v])))
    if draw(st.booleans()):
        items.append(({"sack_permitted": True}, b"\x04\x02"))
    if draw(st.booleans()):
        a, b = draw(u32), draw(u32)
        items.append(({"ts_val": a, "ts_ecr": b}, struct.pack("!BBII", 8, 10, a, b)))
    if draw(st.booleans()):
        blocks = draw(sack_blocks)
        items.append(({"sack_blocks": blocks},
                      bytes([5, 2 + 8 * len(blocks)]) + b"".join(struct.pack("!II", *x) for x in blocks)))
    for _ in range(draw(st.integers(0, 3))):
        k = draw(unknown_kind)
        data = draw(st.binary(max_size=8))
        items.append(({"unknown": (k, data)}, bytes([k, 2 + len(data)]) + data))
    for _ in range(draw(st.integers(0, 4))):
        items.append(({}, b"\x01"))
    items = draw(st.permutations(items))
    raw, expected, unknown = b"", {}, []
    for upd, b in items:
        if len(raw) + len(b) > 40:
            continue
        raw += b
        if "unknown" in upd:
            unknown.append(upd["unknown"])
        else:
            expected.update(upd)
    expected["unknown"] = tuple(unknown)
    return raw, expected


def canonical_size(o: tcp.TcpOptions) -> int:
    """Length of TcpOptions.encode(): the Linux layout, unknown options appended, padded."""
    n = (4 if o.mss is not None else 0) + (12 if o.ts_val is not None else 4 if o.sack_permitted else 0)
    n += (4 if o.wscale is not None else 0) + ((4 + 8 * len(o.sack_blocks)) if o.sack_blocks else 0)
    n += sum(2 + len(d) for _, d in o.unknown)
    return (n + 3) // 4 * 4


def pad_eol(raw: bytes, garbage_after_eol: bytes = b"") -> bytes:
    """EOL then anything up to the 32-bit boundary: the parser must stop at EOL."""
    if len(raw) % 4 == 0:
        return raw
    tail = b"\x00" + garbage_after_eol
    n = 4 - len(raw) % 4
    return raw + (tail + bytes(4))[:n]


@EXAMPLES
@given(option_layout(), st.binary(max_size=3))
def test_tcp_options_parse_any_layout(layout, garbage):
    raw, expected = layout
    opts = tcp.parse_options(pad_eol(raw, garbage))
    assert opts == tcp.TcpOptions(**expected)
    # re-encoding gives the same options back (in the canonical, NOP-aligned layout) -- or,
    # when that layout does not fit in 40 bytes, a ValueError (never an oversized header)
    size = canonical_size(opts)
    if size > 40:
        with pytest.raises(ValueError):
            opts.encode()
        return
    enc = opts.encode()
    assert len(enc) == size
    assert len(enc) % 4 == 0
    assert tcp.parse_options(enc) == opts


@EXAMPLES
@given(st.one_of(st.none(), u16), st.one_of(st.none(), u8), st.booleans(),
       st.one_of(st.none(), st.tuples(u32, u32)), st.one_of(st.just(()), sack_blocks))
def test_tcp_encode_options_roundtrip(mss, wscale, sack_ok, ts, blocks):
    size = (4 if mss is not None else 0) + (12 if ts else (4 if sack_ok else 0)) + (
        4 if wscale is not None else 0) + ((4 + 8 * len(blocks)) if blocks else 0)
    if size > 40:
        with pytest.raises(ValueError):
            tcp.encode_options(mss, wscale, sack_ok, ts, blocks)
        return
    raw = tcp.encode_options(mss, wscale, sack_ok, ts, blocks)
    assert len(raw) == size and len(raw) % 4 == 0
    opts = tcp.parse_options(raw)
    assert opts == tcp.TcpOptions(mss, wscale, sack_ok, tuple(blocks),
                                  ts[0] if ts else None, ts[1] if ts else None)
    assert opts.encode() == raw  # canonical layout: parse -> encode is byte-exact


@given(u16, u32, u32, u8)
def test_tcp_usual_syn_options_bytes(mss, tsval, tsecr, shift):
    # The layout of nearly every SYN (Linux's: MSS, SACK-permitted + TS, NOP + window
    # scale), written out by hand: encoded exactly so, decoded field by field.
    raw = (b"\x02\x04" + mss.to_bytes(2, "big") + b"\x04\x02\x08\x0a" + tsval.to_bytes(4, "big")
           + tsecr.to_bytes(4, "big") + b"\x01\x03\x03" + bytes([shift]))
    assert tcp.encode_options(mss=mss, wscale=shift, sack_permitted=True, ts=(tsval, tsecr)) == raw
    assert tcp.parse_options(raw) == tcp.TcpOptions(mss, shift, True, (), tsval, tsecr)
    # The same 20 bytes with one option changed are not that layout: decoded one by one.
    odd = raw[:16] + b"\x01\x1e\x03" + bytes([shift])      # an unknown option 30, not WS
    assert tcp.parse_options(odd) == tcp.TcpOptions(mss, None, True, (), tsval, tsecr,
                                                    ((30, bytes([shift])),))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_tcp_sack_blocks_count(n):
    blocks = tuple((i * 1000, i * 1000 + 500) for i in range(n))
    raw = tcp.encode_options(sack_blocks=blocks)
    assert raw[:4] == bytes([1, 1, 5, 2 + 8 * n])
    assert tcp.parse_options(raw).sack_blocks == blocks


@pytest.mark.parametrize("raw, counter", [
    (b"\x02", "tcp.in_bad_options"),               # kind without a length byte
    (b"\x02\x01\x00\x00", "tcp.in_bad_options"),   # length < 2
    (b"\x02\x00\x00\x00", "tcp.in_bad_options"),   # length 0 (would loop forever)
    (b"\x08\x0a\x00\x00", "tcp.in_bad_options"),   # runs past the header
    (b"\x01\x01\x01\x1e", "tcp.in_bad_options"),   # unknown kind 30 without length
])
def test_tcp_options_malformed(raw, counter):
    with pytest.raises(MalformedPacket) as ei:
        tcp.parse_options(raw)
    assert ei.value.counter == counter


@pytest.mark.parametrize("kind, length", [(2, 4), (3, 3), (4, 2), (5, 10), (5, 34), (8, 10),
                                          (30, 2), (30, 3), (254, 40)])
@pytest.mark.parametrize("lead", [b"", b"\x01", b"\x01\x01\x01", b"\x02\x04\x05\xb4"])
def test_tcp_option_one_byte_past_the_end(kind, length, lead):
    """An option whose length runs exactly one byte past the option space is malformed
    (and one that ends exactly at the end is fine)."""
    full = bytes([kind, length]) + bytes(range(1, length - 1))
    with pytest.raises(MalformedPacket) as ei:
        tcp.parse_options(lead + full[:-1])  # one byte short
    assert ei.value.counter == "tcp.in_bad_options"
    tcp.parse_options(lead + full)


def test_tcp_options_wrong_length_known_kind_kept_as_unknown():
    o = tcp.parse_options(b"\x02\x03\x05\x01\x03\x02\x00\x00")  # MSS len 3, WS len 2
    assert o.mss is None and o.wscale is None
    assert o.unknown == ((2, b"\x05"), (3, b""))
    o = tcp.parse_options(b"\x05\x06" + bytes(4) + b"\x00\x00")  # SACK with a half block
    assert o.sack_blocks == () and o.unknown == ((5, bytes(4)),)


def test_tcp_options_eol_stops_parsing():
    o = tcp.parse_options(b"\x02\x04\x05\xb4\x00\x03\x03\x07")  # MSS, EOL, then garbage WS
    assert o.mss == 1460 and o.wscale is None


# --------------------------------------------------------------------------- TCP header

@st.composite
def tcp_fields(draw):
    raw_opts, _ = draw(option_layout())
    return dict(src=draw(ip4), dst=draw(ip4), sport=draw(u16), dport=draw(u16), seq=draw(u32),
                ack=draw(u32), flags=draw(u8), window=draw(u16), urgent=draw(u16),
                options=pad_eol(raw_opts), payload=draw(st.binary(max_size=100)))


def ref_tcp(f) -> bytes:
    hl = 20 + len(f["options"])
    head = struct.pack("!HHIIBBHHH", f["sport"], f["dport"], f["seq"], f["ack"], (hl // 4) << 4,
                       f["flags"], f["window"], 0, f["urgent"]) + f["options"]
    seg = head + f["payload"]
    c = internet_checksum(f["src"] + f["dst"] + struct.pack("!BBH", 0, 6, len(seg)) + seg)
    return seg[:16] + c.to_bytes(2, "big") + seg[18:]


@EXAMPLES
@given(tcp_fields())
def test_tcp_roundtrip(f):
    raw = ref_tcp(f)
    built = tcp.build(f["src"], f["dst"], f["sport"], f["dport"], f["seq"], f["ack"], f["flags"],
                      f["window"], f["payload"], options=f["options"], urgent=f["urgent"])
    assert built == raw
    hdr, payload = tcp.parse(raw, f["src"], f["dst"])
    for k in ("sport", "dport", "seq", "ack", "flags", "window", "urgent"):
        assert getattr(hdr, k) == f[k], k
    assert hdr.header_length == 20 + len(f["options"])
    assert hdr.checksum == int.from_bytes(raw[16:18], "big")
    assert hdr.options == tcp.parse_options(f["options"])
    assert bytes(payload) == f["payload"]
    # parse -> build: same bytes (options passed through as they were on the wire)
    again = tcp.build(f["src"], f["dst"], hdr.sport, hdr.dport, hdr.seq, hdr.ack, hdr.flags,
                      hdr.window, payload, options=bytes(raw[20:hdr.header_length]),
                      urgent=hdr.urgent)
    assert again == raw
    # and re-encoded options give an equivalent segment (when the canonical layout fits)
    if canonical_size(hdr.options) > 40:
        return
    seg2 = tcp.build(f["src"], f["dst"], hdr.sport, hdr.dport, hdr.seq, hdr.ack, hdr.flags,
                     hdr.window, payload, options=hdr.options.encode(), urgent=hdr.urgent)
    hdr2, _ = tcp.parse(seg2, f["src"], f["dst"])
    assert hdr2.options == hdr.options


# --------------------------------------------------------------------------- whole frames

@EXAMPLES
@given(ipv4_fields(), st.sampled_from(["icmp", "udp", "tcp"]), tcp_fields(), mac, mac)
def test_frame_roundtrip(ipf, kind, tf, dmac, smac):
    src, dst = ipf["src"], ipf["dst"]
    ipf["mf"], ipf["frag_offset"] = False, 0
    if kind == "icmp":
        seg = icmp.build_echo(True, tf["sport"], tf["dport"], tf["payload"])
        proto = 1
    elif kind == "udp":
        seg = udp.build(src, dst, tf["sport"], tf["dport"], tf["payload"])
        proto = 17
    else:
        seg = tcp.build(src, dst, tf["sport"], tf["dport"], tf["seq"], tf["ack"], tf["flags"],
                        tf["window"], tf["payload"], options=tf["options"], urgent=tf["urgent"])
        proto = 6
    ipf.update(proto=proto, payload=seg)
    frame = ethernet.build(dmac, smac, 0x0800, ref_ipv4(ipf))
    f = parse_frame(frame)
    assert (f.eth.dst, f.eth.src) == (dmac, smac)
    assert (f.ip.src, f.ip.dst, f.ip.proto, f.ip.options) == (src, dst, proto, ipf["options"])
    assert bytes(f.payload) == tf["payload"]
    layer = {"icmp": f.icmp, "udp": f.udp, "tcp": f.tcp}[kind]
    assert layer is not None
    assert [x for x in (f.icmp, f.udp, f.tcp, f.arp) if x is not None] == [layer]
    if kind == "tcp":
        assert (f.tcp.sport, f.tcp.seq, f.tcp.flags) == (tf["sport"], tf["seq"], tf["flags"])
    elif kind == "udp":
        assert (f.udp.sport, f.udp.dport) == (tf["sport"], tf["dport"])
    else:
        assert (f.icmp.ident, f.icmp.seq) == (tf["sport"], tf["dport"])


@EXAMPLES
@given(ip4, ip4, u16, u16, st.binary(min_size=1, max_size=200), st.integers(1, 30))
def test_first_fragment_decodes_transport_header(src, dst, sport, dport, payload, cut_words):
    """A first fragment (MF, offset 0) carries only part of the transport datagram: its
    header decodes, its checksum is not checked; later fragments stop at IP."""
    for proto, seg in ((17, udp.build(src, dst, sport, dport, payload * 8)),
                       (6, tcp.build(src, dst, sport, dport, 1, 2, tcp.ACK, 100, payload * 8))):
        cut = min(len(seg) - 8, 8 * cut_words)
        cut -= cut % 8
        if cut < 24:
            continue
        first = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800,
                               ipv4.build(src, dst, proto, seg[:cut], mf=True, ident=9))
        f = parse_frame(first)
        hdr = f.udp if proto == 17 else f.tcp
        assert hdr is not None and (hdr.sport, hdr.dport) == (sport, dport)
        if proto == 17:
            assert f.udp.length == len(seg) and bytes(f.payload) == seg[8:cut]
        later = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800,
                               ipv4.build(src, dst, proto, seg[cut:], frag_offset=cut, ident=9))
        g = parse_frame(later)
        assert g.udp is None and g.tcp is None and g.icmp is None
        assert g.ip.frag_offset == cut and bytes(g.payload) == seg[cut:]


# The stack's own fast paths (SegmentTemplate, decode_header, decode_options) must produce
# and read exactly what the general build() / parse() do: one codec, two speeds.
@EXAMPLES
@given(ip4, ip4, st.integers(1, 0xFFFF), st.integers(1, 0xFFFF), st.integers(0, 2**40),
       st.integers(0, 2**40), st.integers(0, 0xFF), u16,
       st.one_of(st.binary(max_size=64), st.binary(min_size=500, max_size=1600)),
       st.one_of(st.none(), st.tuples(u32, u32)), st.one_of(st.just(()), sack_blocks))
def test_tcp_template_matches_build(src, dst, sport, dport, seq, ack, flags, win, payload, ts,
                                    blocks):
    tpl = tcp.SegmentTemplate(src, dst, sport, dport)
    options = tcp.encode_options(ts=ts, sack_blocks=blocks[:3])
    seg = tpl.build(seq, ack, flags, win, payload, options)
    want = tcp.build(src, dst, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, win,
                     payload, options)
    assert seg == want
    if ts is not None:
        fast = tpl.build_ts(seq, ack, flags & ~tcp.SYN, win, ts[0], ts[1], payload)
        assert fast == tcp.build(src, dst, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                 flags & ~tcp.SYN, win, payload, tcp.encode_options(ts=ts))
        seg = fast
    hdr, data = tcp.parse(seg, src, dst)
    fields = tcp.decode_header(seg, src, dst, True)
    assert fields == (hdr.sport, hdr.dport, hdr.seq, hdr.ack, hdr.flags, hdr.window,
                      hdr.header_length)
    opts, tsval, tsecr = tcp.decode_options(memoryview(seg), hdr.header_length, hdr.flags)
    assert (tsval, tsecr) == (hdr.options.ts_val, hdr.options.ts_ecr)
    assert bytes(data) == payload
    *head, opts2, tsval2, tsecr2, data2 = tcp.decode_segment(seg, src, dst, True)
    assert tuple(head) == fields[:6] and (tsval2, tsecr2) == (tsval, tsecr)
    assert bytes(data2) == payload


@given(st.binary(max_size=3000), st.integers(0, 2999), st.integers(0, 9000))
def test_reduced_sum_is_the_word_sum_mod_ffff(data, cut, other):
    """The hot path's payload sum (little-endian halves, or folded by a plan: see
    checksum.reduced_sum) is the RFC 1071 sum of an independent implementation, for every
    length, odd ones included, for memoryview slices as the send and receive paths pass
    them, and with a plan made for this length or for any other."""
    from wirestack.wire.checksum import fold_plan, reduced_sum
    want = (0xFFFF - internet_checksum(data)) % 0xFFFF     # the ones'-complement sum, mod 0xFFFF
    view = memoryview(b"\x00" + data)[1:]
    for plan in (None, fold_plan(len(data)), fold_plan(other)):
        assert reduced_sum(data, plan) % 0xFFFF == want
        assert reduced_sum(view, plan) % 0xFFFF == want
        if data:
            at = cut % len(data)
            flipped = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]
            assert reduced_sum(flipped, plan) % 0xFFFF != want


def test_a_fold_plan_halves_the_number_down_to_a_few_hundred_bits():
    """Each step of a plan folds at a multiple of 16 bits (2**k == 1 mod 0xFFFF), about
    half of what is left; none for data short enough to divide at once."""
    from wirestack.wire.checksum import fold_plan
    assert fold_plan(100) == ()
    plan = fold_plan(1448)
    assert [k for k, _ in plan] == [5792, 2896, 1440, 720]
    assert all(k % 16 == 0 and mask == (1 << k) - 1 for k, mask in plan)


@pytest.mark.parametrize("size", [1447, 1448])
def test_tcp_decode_header_rejects_a_flipped_payload_bit(size):
    src, dst = b"\x01" * 4, b"\x02" * 4
    seg = tcp.build(src, dst, 1, 80, 1, 0, tcp.ACK, 100, bytes(range(256)) * 6)[:20 + size]
    seg = tcp.build(src, dst, 1, 80, 1, 0, tcp.ACK, 100, seg[20:])
    assert tcp.decode_header(seg, src, dst, True)[0] == 1
    for bit in (8 * 20, 8 * 700 + 3, 8 * (len(seg) - 1) + 7):
        bad = bytearray(seg)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(MalformedPacket) as e:
            tcp.decode_header(bytes(bad), src, dst, True)
        assert e.value.counter == "tcp.in_csum_errors"


@pytest.mark.parametrize("seg, counter", [
    (b"\x00" * 19, "tcp.in_hdr_errors"),
    (tcp.build(b"\x01" * 4, b"\x02" * 4, 0, 80, 1, 0, tcp.SYN, 100), "tcp.in_hdr_errors"),
    (bytes(b ^ 0xFF if i == 21 else b for i, b in enumerate(
        tcp.build(b"\x01" * 4, b"\x02" * 4, 1, 80, 1, 0, tcp.SYN, 100, b"xy"))),
     "tcp.in_csum_errors"),
])
def test_tcp_decode_header_rejects(seg, counter):
    with pytest.raises(MalformedPacket) as e:
        tcp.decode_header(seg, b"\x01" * 4, b"\x02" * 4, True)
    assert e.value.counter == counter
