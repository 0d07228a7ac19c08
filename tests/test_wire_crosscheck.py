"""Cross-check against two independent decoders/encoders, scapy and dpkt (test-only).

Both directions, on random valid packets (hypothesis):
  A. wirestack builds a frame -> scapy and dpkt decode the same fields, and recomputing the
     checksums in scapy and in dpkt gives back exactly wirestack's bytes;
  B. scapy (or dpkt) builds a frame from random fields -> wirestack's parse_frame decodes
     the same fields, and wirestack's builders, fed what it parsed, reproduce the bytes.
scapy is slow (~150-300 µs a parse), so the example counts stay at 200 per test.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

scapy_l2 = pytest.importorskip("scapy.layers.l2")
scapy_inet = pytest.importorskip("scapy.layers.inet")
dpkt = pytest.importorskip("dpkt")

from scapy.compat import raw  # noqa: E402
from scapy.packet import Raw  # noqa: E402

from wirestack.wire import arp, ethernet, icmp, ipv4, parse_frame, tcp, udp  # noqa: E402
from wirestack.wire.addr import ip_ntoa, mac_ntoa  # noqa: E402
from wire_reference import EXAMPLES, ip4, mac, u8, u16, u32  # noqa: E402

Ether, ARP = scapy_l2.Ether, scapy_l2.ARP
IP, TCP, UDP, ICMP = scapy_inet.IP, scapy_inet.TCP, scapy_inet.UDP, scapy_inet.ICMP


# IP options scapy and dpkt both carry through unchanged: NOP/EOL padding, router alert,
# record route with 1-9 empty slots, a timestamp option.
ip_options = st.one_of(
    st.just(b""),
    st.just(b"\x01\x01\x01\x00"),
    st.just(b"\x94\x04\x00\x00"),
    st.integers(1, 9).map(lambda n: bytes([7, 3 + 4 * n, 4]) + bytes(4 * n) + b"\x00"),  # + EOL
    st.just(bytes([68, 12, 5, 0]) + bytes(8)),
)

# option kinds none of the three decoders gives a meaning to
SCAPY_NAMED = set(scapy_inet.TCPOptions[0])
unknown_kind = st.integers(6, 254).filter(lambda k: k not in SCAPY_NAMED and k != 8)
sack_blocks = st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)


@st.composite
def tcp_options(draw):
    """A TcpOptions value whose canonical encoding fits in 40 bytes."""
    while True:
        o = tcp.TcpOptions(
            mss=draw(st.one_of(st.none(), u16)),
            wscale=draw(st.one_of(st.none(), st.integers(0, 14))),
            sack_permitted=draw(st.booleans()),
            sack_blocks=draw(st.one_of(st.just(()), sack_blocks)),
            ts_val=None, ts_ecr=None,
            unknown=tuple(draw(st.lists(st.tuples(unknown_kind, st.binary(max_size=6)), max_size=2))))
        if draw(st.booleans()):
            o.ts_val, o.ts_ecr = draw(u32), draw(u32)
        try:
            o.encode()
        except ValueError:
            # too long: drop the SACK blocks and the unknown options, that always fits
            o.sack_blocks, o.unknown = (), ()
        return o


def options_from_scapy(opts) -> tcp.TcpOptions:
    o = tcp.TcpOptions()
    unknown = []
    for name, value in opts:
        if name in ("NOP", "EOL"):
            continue
        if name == "MSS":
            o.mss = value
        elif name == "WScale":
            o.wscale = value
        elif name == "SAckOK":
            o.sack_permitted = True
        elif name == "Timestamp":
            o.ts_val, o.ts_ecr = value
        elif name == "SAck":
            o.sack_blocks = tuple(zip(value[0::2], value[1::2]))
        else:
            assert isinstance(name, int), name
            unknown.append((name, bytes(value)))
    o.unknown = tuple(unknown)
    return o


def options_from_dpkt(optbytes) -> tcp.TcpOptions:
    o = tcp.TcpOptions()
    unknown = []
    for kind, data in dpkt.tcp.parse_opts(optbytes):
        if kind in (0, 1):
            if kind == 0:
                break
            continue
        if kind == 2:
            o.mss = struct.unpack("!H", data)[0]
        elif kind == 3:
            o.wscale = data[0]
        elif kind == 4:
            o.sack_permitted = True
        elif kind == 8:
            o.ts_val, o.ts_ecr = struct.unpack("!II", data)
        elif kind == 5:
            v = struct.unpack("!%dI" % (len(data) // 4), data)
            o.sack_blocks = tuple(zip(v[0::2], v[1::2]))
        else:
            unknown.append((kind, bytes(data)))
    o.unknown = tuple(unknown)
    return o


def scapy_options(o: tcp.TcpOptions, order) -> list:
    """The same options as a scapy list, in a drawn order, with NOPs sprinkled in."""
    items = []
    if o.mss is not None:
        items.append(("MSS", o.mss))
    if o.wscale is not None:
        items.append(("WScale", o.wscale))
    if o.sack_permitted:
        items.append(("SAckOK", b""))
    if o.ts_val is not None:
        items.append(("Timestamp", (o.ts_val, o.ts_ecr)))
    if o.sack_blocks:
        items.append(("SAck", tuple(x for b in o.sack_blocks for x in b)))
    items += [(k, d) for k, d in o.unknown]
    known = [i for i in items if not isinstance(i[0], int)]
    unk = [i for i in items if isinstance(i[0], int)]
    known = [known[i] for i in order(len(known))]
    return known + unk  # unknown ones keep their relative order (it is part of the value)


# --------------------------------------------------------------------------- A: wirestack -> scapy, dpkt

@st.composite
def ws_frame(draw):
    """A random valid frame built by wirestack, and what it was built from."""
    kind = draw(st.sampled_from(["arp", "icmp-echo", "icmp-error", "udp", "tcp"]))
    spec = {"kind": kind, "dst_mac": draw(mac), "src_mac": draw(mac)}
    if kind == "arp":
        spec["arp"] = (draw(st.sampled_from([1, 2])), draw(mac), draw(ip4), draw(mac), draw(ip4))
        return ethernet.build(spec["dst_mac"], spec["src_mac"], 0x0806, arp.build(*spec["arp"])), spec
    src, dst = draw(ip4), draw(ip4)
    ipkw = dict(ttl=draw(u8), ident=draw(u16), df=draw(st.booleans()), tos=draw(u8),
                options=draw(ip_options))
    payload = draw(st.binary(max_size=80))
    spec.update(src=src, dst=dst, ipkw=ipkw, payload=payload)
    if kind == "icmp-echo":
        spec.update(type=draw(st.sampled_from([0, 8])), ident=draw(u16), seq=draw(u16))
        seg = icmp.build_echo(spec["type"] == 8, spec["ident"], spec["seq"], payload)
        proto = 1
    elif kind == "icmp-error":
        inner = udp.build(dst, src, draw(u16), draw(u16), payload)
        offending = ipv4.build(dst, src, 17, inner, ttl=draw(u8), ident=draw(u16), df=True)
        spec.update(type=3, code=4, mtu=draw(st.integers(68, 65535)), offending=offending)
        seg = icmp.build_error(3, 4, offending, next_hop_mtu=spec["mtu"])
        proto = 1
    elif kind == "udp":
        spec.update(sport=draw(u16), dport=draw(u16))
        seg = udp.build(src, dst, spec["sport"], spec["dport"], payload)
        proto = 17
    else:
        o = draw(tcp_options())
        spec.update(sport=draw(u16), dport=draw(u16), seq=draw(u32), ack=draw(u32), flags=draw(u8),
                    window=draw(u16), urgent=draw(u16), options=o)
        seg = tcp.build(src, dst, spec["sport"], spec["dport"], spec["seq"], spec["ack"],
                        spec["flags"], spec["window"], payload, options=o.encode(),
                        urgent=spec["urgent"])
        proto = 6
    spec["proto"] = proto
    frame = ethernet.build(spec["dst_mac"], spec["src_mac"], 0x0800,
                           ipv4.build(src, dst, proto, seg, **ipkw))
    return frame, spec


@EXAMPLES
@given(ws_frame())
def test_wirestack_frames_decoded_by_scapy(fs):
    frame, spec = fs
    p = Ether(frame)
    assert (p.dst, p.src) == (mac_ntoa(spec["dst_mac"]), mac_ntoa(spec["src_mac"]))
    if spec["kind"] == "arp":
        op, sha, spa, tha, tpa = spec["arp"]
        a = p[ARP]
        assert (a.hwtype, a.ptype, a.hwlen, a.plen, a.op) == (1, 0x0800, 6, 4, op)
        assert (a.hwsrc, a.psrc, a.hwdst, a.pdst) == (mac_ntoa(sha), ip_ntoa(spa), mac_ntoa(tha), ip_ntoa(tpa))
        return
    ip = p[IP]
    kw = spec["ipkw"]
    assert (ip.version, ip.ihl, ip.tos, ip.id, ip.ttl, ip.proto, ip.frag) == (
        4, 5 + len(kw["options"]) // 4, kw["tos"], kw["ident"], kw["ttl"], spec["proto"], 0)
    assert (ip.src, ip.dst) == (ip_ntoa(spec["src"]), ip_ntoa(spec["dst"]))
    assert bool(ip.flags.DF) == kw["df"] and not ip.flags.MF
    assert raw(ip)[20:ip.ihl * 4] == kw["options"]
    if spec["kind"] == "icmp-echo":
        i = p[ICMP]
        assert (i.type, i.code, i.id, i.seq) == (spec["type"], 0, spec["ident"], spec["seq"])
        # (what follows the ICMP header up to the IP total length; the rest is padding)
        assert ip.len == ip.ihl * 4 + 8 + len(spec["payload"])
        assert raw(i.payload)[:len(spec["payload"])] == spec["payload"]
    elif spec["kind"] == "icmp-error":
        i = p[ICMP]
        assert (i.type, i.code, i.nexthopmtu) == (3, 4, spec["mtu"])
        assert raw(i.payload) == spec["offending"][:28]
    elif spec["kind"] == "udp":
        u = p[UDP]
        assert (u.sport, u.dport, u.len) == (spec["sport"], spec["dport"], 8 + len(spec["payload"]))
        assert raw(u.payload)[:len(spec["payload"])] == spec["payload"]
    else:
        t = p[TCP]
        assert (t.sport, t.dport, t.seq, t.ack, int(t.flags), t.window, t.urgptr) == (
            spec["sport"], spec["dport"], spec["seq"], spec["ack"], spec["flags"], spec["window"],
            spec["urgent"])
        assert t.dataofs * 4 == 20 + len(spec["options"].encode())
        assert options_from_scapy(t.options) == spec["options"]
    # scapy recomputes every checksum from scratch: the same bytes come out
    q = Ether(frame)
    del q[IP].chksum
    layer = {"icmp-echo": ICMP, "icmp-error": ICMP, "udp": UDP, "tcp": TCP}[spec["kind"]]
    del q[layer].chksum
    assert raw(q) == frame


@EXAMPLES
@given(ws_frame())
def test_wirestack_frames_decoded_by_dpkt(fs):
    frame, spec = fs
    e = dpkt.ethernet.Ethernet(frame)
    assert (e.dst, e.src) == (spec["dst_mac"], spec["src_mac"])
    if spec["kind"] == "arp":
        a = e.data
        assert (a.hrd, a.pro, a.hln, a.pln) == (1, 0x0800, 6, 4)
        assert (a.op, a.sha, a.spa, a.tha, a.tpa) == spec["arp"]
        return
    ip = e.data
    kw = spec["ipkw"]
    assert (ip.v, ip.hl, ip.tos, ip.id, ip.ttl, ip.p, ip.offset, ip.df, ip.mf) == (
        4, 5 + len(kw["options"]) // 4, kw["tos"], kw["ident"], kw["ttl"], spec["proto"], 0,
        int(kw["df"]), 0)
    assert (ip.src, ip.dst, bytes(ip.opts)) == (spec["src"], spec["dst"], kw["options"])
    total = ip.len
    t = ip.data
    if spec["kind"] == "icmp-echo":
        assert (t.type, t.code, t.data.id, t.data.seq, bytes(t.data.data)) == (
            spec["type"], 0, spec["ident"], spec["seq"], spec["payload"])
    elif spec["kind"] == "icmp-error":
        assert (t.type, t.code, t.data.mtu) == (3, 4, spec["mtu"])
        assert bytes(t.data.data) == spec["offending"][:28]
    elif spec["kind"] == "udp":
        assert (t.sport, t.dport, t.ulen, bytes(t.data)) == (
            spec["sport"], spec["dport"], 8 + len(spec["payload"]), spec["payload"])
    else:
        assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.win, t.urp, bytes(t.data)) == (
            spec["sport"], spec["dport"], spec["seq"], spec["ack"], spec["flags"], spec["window"],
            spec["urgent"], spec["payload"])
        assert t.off * 4 == 20 + len(t.opts)
        assert options_from_dpkt(t.opts) == spec["options"]
    # dpkt recomputes the checksums when they are zero (dpkt drops the Ethernet padding)
    ip.sum = 0
    t.sum = 0
    assert bytes(e) == frame[:14 + total]


# --------------------------------------------------------------------------- B: scapy, dpkt -> wirestack

@st.composite
def scapy_frame(draw):
    """A random frame built by scapy, and the fields it was built from."""
    kind = draw(st.sampled_from(["arp", "icmp", "udp", "tcp"]))
    dmac, smac = draw(mac), draw(mac)
    spec = {"kind": kind, "dmac": dmac, "smac": smac}
    eth = Ether(dst=mac_ntoa(dmac), src=mac_ntoa(smac))
    if kind == "arp":
        spec["arp"] = (draw(u16), draw(mac), draw(ip4), draw(mac), draw(ip4))
        op, sha, spa, tha, tpa = spec["arp"]
        pkt = eth / ARP(op=op, hwsrc=mac_ntoa(sha), psrc=ip_ntoa(spa), hwdst=mac_ntoa(tha), pdst=ip_ntoa(tpa))
        return raw(pkt), spec
    src, dst = draw(ip4), draw(ip4)
    spec["ip"] = dict(src=src, dst=dst, tos=draw(u8), id=draw(u16), ttl=draw(u8),
                      df=draw(st.booleans()), options=draw(ip_options))
    i = spec["ip"]
    ip = IP(src=ip_ntoa(src), dst=ip_ntoa(dst), tos=i["tos"], id=i["id"], ttl=i["ttl"],
            flags="DF" if i["df"] else 0, options=i["options"])
    payload = draw(st.binary(max_size=80))
    spec["payload"] = payload
    if kind == "icmp":
        spec.update(type=draw(st.sampled_from([0, 8])), ident=draw(u16), seq=draw(u16))
        l4 = ICMP(type=spec["type"], code=0, id=spec["ident"], seq=spec["seq"])
    elif kind == "udp":
        spec.update(sport=draw(u16), dport=draw(u16))
        l4 = UDP(sport=spec["sport"], dport=spec["dport"])
    else:
        o = draw(tcp_options())
        spec.update(sport=draw(u16), dport=draw(u16), seq=draw(u32), ack=draw(u32), flags=draw(u8),
                    window=draw(u16), urgent=draw(u16), options=o)
        perm = draw(st.permutations(range(5)))
        order = lambda n: [k for k in perm if k < n]  # noqa: E731
        l4 = TCP(sport=spec["sport"], dport=spec["dport"], seq=spec["seq"], ack=spec["ack"],
                 flags=spec["flags"], window=spec["window"], urgptr=spec["urgent"],
                 options=scapy_options(o, order))
    pkt = eth / ip / l4 / Raw(payload) if payload else eth / ip / l4
    return raw(pkt), spec


@EXAMPLES
@given(scapy_frame())
def test_scapy_frames_decoded_by_wirestack(fs):
    data, spec = fs
    f = parse_frame(data)
    assert (f.eth.dst, f.eth.src) == (spec["dmac"], spec["smac"])
    if spec["kind"] == "arp":
        assert f.eth.ethertype == 0x0806 and f.ip is None
        assert f.arp == arp.ArpPacket(*spec["arp"])
        assert ethernet.build(f.eth.dst, f.eth.src, 0x0806, f.arp.build(), pad=False) == data
        return
    i = spec["ip"]
    ip = f.ip
    assert (ip.src, ip.dst, ip.tos, ip.ident, ip.ttl, ip.df, ip.mf, ip.frag_offset, ip.options) == (
        i["src"], i["dst"], i["tos"], i["id"], i["ttl"], i["df"], False, 0, i["options"])
    assert ip.total_length == len(data) - 14
    assert bytes(f.payload) == spec["payload"]
    if spec["kind"] == "icmp":
        assert (f.icmp.type, f.icmp.code, f.icmp.ident, f.icmp.seq) == (
            spec["type"], 0, spec["ident"], spec["seq"])
        seg = icmp.build(f.icmp.type, f.icmp.code, f.icmp.rest, f.payload)
        proto = 1
    elif spec["kind"] == "udp":
        assert (f.udp.sport, f.udp.dport, f.udp.length) == (
            spec["sport"], spec["dport"], 8 + len(spec["payload"]))
        seg = udp.build(ip.src, ip.dst, f.udp.sport, f.udp.dport, f.payload)
        proto = 17
    else:
        t = f.tcp
        assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.window, t.urgent) == (
            spec["sport"], spec["dport"], spec["seq"], spec["ack"], spec["flags"], spec["window"],
            spec["urgent"])
        assert t.options == spec["options"]
        seg = tcp.build(ip.src, ip.dst, t.sport, t.dport, t.seq, t.ack, t.flags, t.window,
                        f.payload, options=data[14 + ip.header_length + 20:14 + ip.header_length
                                                + t.header_length], urgent=t.urgent)
        proto = 6
    # wirestack's builders, fed what wirestack parsed, give scapy's bytes (checksums included)
    again = ethernet.build(f.eth.dst, f.eth.src, 0x0800,
                           ipv4.build(ip.src, ip.dst, proto, seg, ttl=ip.ttl, ident=ip.ident,
                                      df=ip.df, tos=ip.tos, options=ip.options), pad=False)
    assert again == data


@st.composite
def dpkt_frame(draw):
    kind = draw(st.sampled_from(["arp", "icmp", "udp", "tcp"]))
    dmac, smac = draw(mac), draw(mac)
    spec = {"kind": kind, "dmac": dmac, "smac": smac}
    if kind == "arp":
        spec["arp"] = (draw(u16), draw(mac), draw(ip4), draw(mac), draw(ip4))
        op, sha, spa, tha, tpa = spec["arp"]
        body = dpkt.arp.ARP(op=op, sha=sha, spa=spa, tha=tha, tpa=tpa)
        return bytes(dpkt.ethernet.Ethernet(dst=dmac, src=smac, type=0x0806, data=body)), spec
    src, dst = draw(ip4), draw(ip4)
    payload = draw(st.binary(max_size=80))
    spec.update(src=src, dst=dst, tos=draw(u8), id=draw(u16), ttl=draw(u8), df=draw(st.booleans()),
                options=draw(ip_options), payload=payload)
    if kind == "icmp":
        spec.update(type=draw(st.sampled_from([0, 8])), ident=draw(u16), seq=draw(u16))
        l4 = dpkt.icmp.ICMP(type=spec["type"], code=0,
                            data=dpkt.icmp.ICMP.Echo(id=spec["ident"], seq=spec["seq"], data=payload))
        proto = 1
    elif kind == "udp":
        spec.update(sport=draw(u16), dport=draw(u16))
        l4 = dpkt.udp.UDP(sport=spec["sport"], dport=spec["dport"], data=payload)
        l4.ulen = 8 + len(payload)
        proto = 17
    else:
        o = draw(tcp_options())
        spec.update(sport=draw(u16), dport=draw(u16), seq=draw(u32), ack=draw(u32), flags=draw(u8),
                    window=draw(u16), urgent=draw(u16), tcp_options=o)
        opts = o.encode()
        l4 = dpkt.tcp.TCP(sport=spec["sport"], dport=spec["dport"], seq=spec["seq"], ack=spec["ack"],
                          flags=spec["flags"], win=spec["window"], urp=spec["urgent"], opts=opts,
                          off=(20 + len(opts)) // 4, data=payload)
        proto = 6
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, tos=spec["tos"], id=spec["id"], ttl=spec["ttl"],
                    opts=spec["options"], data=l4)
    ip.hl = 5 + len(spec["options"]) // 4
    ip.df = int(spec["df"])
    return bytes(dpkt.ethernet.Ethernet(dst=dmac, src=smac, type=0x0800, data=ip)), spec


@EXAMPLES
@given(dpkt_frame())
def test_dpkt_frames_decoded_by_wirestack(fs):
    data, spec = fs
    f = parse_frame(data)
    assert (f.eth.dst, f.eth.src) == (spec["dmac"], spec["smac"])
    if spec["kind"] == "arp":
        assert f.arp == arp.ArpPacket(*spec["arp"])
        return
    ip = f.ip
    assert (ip.src, ip.dst, ip.tos, ip.ident, ip.ttl, ip.df, ip.mf, ip.frag_offset, ip.options) == (
        spec["src"], spec["dst"], spec["tos"], spec["id"], spec["ttl"], spec["df"], False, 0,
        spec["options"])
    assert bytes(f.payload) == spec["payload"]
    if spec["kind"] == "icmp":
        assert (f.icmp.type, f.icmp.ident, f.icmp.seq) == (spec["type"], spec["ident"], spec["seq"])
        seg = icmp.build_echo(f.icmp.type == 8, f.icmp.ident, f.icmp.seq, f.payload)
    elif spec["kind"] == "udp":
        assert (f.udp.sport, f.udp.dport) == (spec["sport"], spec["dport"])
        seg = udp.build(ip.src, ip.dst, f.udp.sport, f.udp.dport, f.payload)
    else:
        t = f.tcp
        assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.window, t.urgent, t.options) == (
            spec["sport"], spec["dport"], spec["seq"], spec["ack"], spec["flags"], spec["window"],
            spec["urgent"], spec["tcp_options"])
        seg = tcp.build(ip.src, ip.dst, t.sport, t.dport, t.seq, t.ack, t.flags, t.window,
                        f.payload, options=t.options.encode(), urgent=t.urgent)
    again = ipv4.build(ip.src, ip.dst, ip.proto, seg, ttl=ip.ttl, ident=ip.ident, df=ip.df,
                       tos=ip.tos, options=ip.options)
    assert again == data[14:14 + ip.total_length]  # same bytes, checksums included


def test_scapy_fragment_train_decoded_by_wirestack():
    """scapy fragments a UDP datagram: the first fragment decodes down to UDP (its length
    field is the whole datagram's), the others stop at IP, and the pieces add up."""
    fragment = scapy_inet.fragment
    dgram = IP(src="198.18.0.1", dst="198.18.0.2", id=77) / UDP(sport=5, dport=6) / Raw(bytes(range(256)) * 8)
    frags = fragment(dgram, fragsize=600)
    assert len(frags) > 2
    whole = raw(dgram)[20:]
    got = bytearray()
    for n, fr in enumerate(frags):
        f = parse_frame(raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / fr))
        assert f.ip.ident == 77 and f.ip.frag_offset == len(got)
        if n == 0:
            assert f.ip.mf and f.udp is not None and (f.udp.sport, f.udp.dport) == (5, 6)
            assert f.udp.length == len(whole)
            got += whole[:8] + bytes(f.payload)
        else:
            assert f.udp is None
            got += bytes(f.payload)
    assert bytes(got) == whole
