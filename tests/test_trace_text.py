"""The tcpdump-style printer (``wirestack.trace.text.TextTrace``): one expected line per kind of
frame, built with the wire codecs, exactly as a learner reads them in ``wirestack demo --trace``."""

from __future__ import annotations

import pytest

from wirestack.trace.text import TextTrace, fmt_time
from wirestack.wire import arp, ethernet, icmp, ip_aton, ipv4, mac_aton, tcp, udp
from wirestack.wire.tcp import ACK, FIN, PSH, RST, SYN

MAC_A = mac_aton("02:00:5e:00:00:01")
MAC_B = mac_aton("02:00:5e:00:00:02")
BCAST = b"\xff" * 6
A, B = ip_aton("198.18.0.1"), ip_aton("198.18.0.2")


def ip_frame(src, dst, proto, payload, **kw) -> bytes:
    return ethernet.build(MAC_B, MAC_A, ethernet.ETH_P_IPV4, ipv4.build(src, dst, proto, payload, **kw))


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b"", window=65535, options=b""):
    seg = tcp.build(src, dst, sport, dport, seq, ack, flags, window, payload, options)
    return ip_frame(src, dst, ipv4.PROTO_TCP, seg)


def line(frame, **kw) -> str:
    return TextTrace(**kw).format(frame)


# ------------------------------------------------------------------------------------------
# ARP
# ------------------------------------------------------------------------------------------

def test_arp_request_reply_and_announcement():
    req = ethernet.build(BCAST, MAC_A, ethernet.ETH_P_ARP, arp.build(arp.REQUEST, MAC_A, A, bytes(6), B))
    rep = ethernet.build(MAC_A, MAC_B, ethernet.ETH_P_ARP, arp.build(arp.REPLY, MAC_B, B, MAC_A, A))
    ann = ethernet.build(BCAST, MAC_A, ethernet.ETH_P_ARP, arp.build(arp.REQUEST, MAC_A, A, bytes(6), A))
    assert line(req) == "ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 28"
    assert line(rep) == "ARP, Reply 198.18.0.2 is-at 02:00:5e:00:00:02, length 28"
    assert line(ann) == "ARP, Announcement 198.18.0.1, length 28"


def test_time_tag_and_link_level_prefixes():
    req = ethernet.build(BCAST, MAC_A, ethernet.ETH_P_ARP, arp.build(arp.REQUEST, MAC_A, A, bytes(6), B))
    t = TextTrace(link_level=True)
    assert t.format(req, 1_000_120_999, tag="a") == (
        "1.000120 a 02:00:5e:00:00:01 > ff:ff:ff:ff:ff:ff, "
        "ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 28")
    assert fmt_time(0) == "0.000000"
    assert fmt_time(62 * 10**9 + 5_000) == "62.000005"


# ------------------------------------------------------------------------------------------
# ICMP, UDP, fragments
# ------------------------------------------------------------------------------------------

def test_icmp_echo_request_and_reply():
    data = bytes(range(56))
    req = ip_frame(A, B, ipv4.PROTO_ICMP, icmp.build_echo(True, 0x1234, 7, data))
    rep = ip_frame(B, A, ipv4.PROTO_ICMP, icmp.build_echo(False, 0x1234, 7, data))
    assert line(req) == "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 4660, seq 7, length 64"
    assert line(rep) == "IP 198.18.0.2 > 198.18.0.1: ICMP echo reply, id 4660, seq 7, length 64"


def test_icmp_port_unreachable_names_the_port():
    offending = ipv4.build(A, B, ipv4.PROTO_UDP, udp.build(A, B, 40000, 9, b"anyone there?"))
    err = ip_frame(B, A, ipv4.PROTO_ICMP, icmp.build_error(icmp.DEST_UNREACHABLE, icmp.PORT_UNREACHABLE,
                                                           offending))
    assert line(err) == "IP 198.18.0.2 > 198.18.0.1: ICMP 198.18.0.2 udp port 9 unreachable, length 36"


def test_udp():
    f = ip_frame(A, B, ipv4.PROTO_UDP, udp.build(A, B, 49152, 7, b"hello"))
    assert line(f) == "IP 198.18.0.1.49152 > 198.18.0.2.7: UDP, length 5"


def test_fragments_first_and_later():
    whole = udp.build(A, B, 49152, 9, bytes(2000))         # 2008 bytes of IP payload
    first = ip_frame(A, B, ipv4.PROTO_UDP, whole[:1480], ident=4660, mf=True)
    second = ip_frame(A, B, ipv4.PROTO_UDP, whole[1480:], ident=4660, frag_offset=1480)
    assert line(first) == "IP 198.18.0.1.49152 > 198.18.0.2.9: UDP, length 2000 (frag 4660:1480@0+)"
    assert line(second) == "IP 198.18.0.1 > 198.18.0.2: ip-proto-17 (frag 4660:528@1480)"


# ------------------------------------------------------------------------------------------
# TCP
# ------------------------------------------------------------------------------------------

def test_tcp_syn_with_options():
    opts = tcp.encode_options(mss=1460, sack_permitted=True, ts=(1, 0), wscale=7)
    syn = tcp_frame(A, B, 49152, 80, 123456789, 0, SYN, options=opts)
    expected = ("IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [S], seq {}, win 65535, "
                "options [mss 1460,sackOK,TS val 1 ecr 0,wscale 7], length 0")
    assert line(syn) == expected.format(0)                     # relative (the default)
    assert line(syn, relative=False) == expected.format(123456789)


ISN_A, ISN_B = 4_000_000_000, 77_777   # the client's ISN wraps around 2^32 during the exchange


def exchange() -> list[bytes]:
    ts = tcp.encode_options(ts=(10, 20))
    return [
        tcp_frame(A, B, 49152, 80, ISN_A, 0, SYN, options=tcp.encode_options(mss=1460)),
        tcp_frame(B, A, 80, 49152, ISN_B, ISN_A + 1, SYN | ACK, options=tcp.encode_options(mss=1460)),
        tcp_frame(A, B, 49152, 80, ISN_A + 1, ISN_B + 1, ACK),
        tcp_frame(A, B, 49152, 80, ISN_A + 1, ISN_B + 1, PSH | ACK, b"x" * 1000),
        tcp_frame(B, A, 80, 49152, ISN_B + 1, ISN_A + 1001, ACK, window=1000, options=ts),
        tcp_frame(B, A, 80, 49152, ISN_B + 1, ISN_A + 1001, PSH | ACK, b"ok"),
        tcp_frame(A, B, 49152, 80, (ISN_A + 1001) % 2**32, ISN_B + 3, FIN | ACK),
        tcp_frame(B, A, 80, 49152, ISN_B + 3, (ISN_A + 1002) % 2**32, FIN | ACK),
        tcp_frame(A, B, 49152, 80, (ISN_A + 1002) % 2**32, ISN_B + 4, ACK),
    ]


RELATIVE = [
    "IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [S], seq 0, win 65535, options [mss 1460], length 0",
    "IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [S.], seq 0, ack 1, win 65535, options [mss 1460], length 0",
    "IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [.], ack 1, win 65535, length 0",
    "IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [P.], seq 1:1001, ack 1, win 65535, length 1000",
    "IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [.], ack 1001, win 1000, options [TS val 10 ecr 20], length 0",
    "IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [P.], seq 1:3, ack 1001, win 65535, length 2",
    "IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [F.], seq 1001, ack 3, win 65535, length 0",
    "IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [F.], seq 3, ack 1002, win 65535, length 0",
    "IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [.], ack 4, win 65535, length 0",
]


def test_tcp_exchange_with_relative_sequence_numbers():
    t = TextTrace()
    assert [t.format(f) for f in exchange()] == RELATIVE


def test_tcp_exchange_absolute_sequence_numbers():
    t = TextTrace(relative=False)
    lines = [t.format(f) for f in exchange()]
    assert lines[0].endswith(f"Flags [S], seq {ISN_A}, win 65535, options [mss 1460], length 0")
    assert f"Flags [S.], seq {ISN_B}, ack {ISN_A + 1}," in lines[1]
    assert f"Flags [P.], seq {ISN_A + 1}:{(ISN_A + 1001) % 2**32}, ack {ISN_B + 1}," in lines[3]
    assert f"Flags [F.], seq {(ISN_A + 1001) % 2**32}, ack {ISN_B + 3}," in lines[6]


def test_tcp_sack_blocks_are_shown_relative():
    t = TextTrace()
    t.format(exchange()[0])
    t.format(exchange()[1])
    sack = tcp.encode_options(sack_blocks=[(ISN_A + 1001, ISN_A + 2001)])
    f = tcp_frame(B, A, 80, 49152, ISN_B + 1, ISN_A + 1, ACK, options=sack)
    assert t.format(f) == ("IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [.], ack 1, win 65535, "
                           "options [sack 1 {1001:2001}], length 0")


def test_tcp_rst_shows_its_sequence_number_like_tcpdump():
    # tcpdump prints "seq" when there is data or SYN, FIN or RST is set.
    f = tcp_frame(B, A, 80, 49152, 0, ISN_A + 1, RST | ACK, window=0)
    assert line(f, relative=False) == (
        f"IP 198.18.0.2.80 > 198.18.0.1.49152: Flags [R.], seq 0, ack {ISN_A + 1}, win 0, length 0")


# ------------------------------------------------------------------------------------------
# malformed frames
# ------------------------------------------------------------------------------------------

def _bad_udp_checksum() -> bytes:
    f = bytearray(ip_frame(A, B, ipv4.PROTO_UDP, udp.build(A, B, 49152, 7, b"hello")))
    f[14 + 20 + 8] ^= 0x01   # first payload byte
    return bytes(f)


def _bad_ip_version() -> bytes:
    f = bytearray(ip_frame(A, B, ipv4.PROTO_UDP, udp.build(A, B, 49152, 7, b"hello")))
    f[14] = 0x65
    return bytes(f)


@pytest.mark.parametrize("frame", [
    b"",
    b"\x01\x02\x03\x04\x05",
    MAC_B + MAC_A + b"\x08\x00",                                      # IPv4 type, no header
    MAC_B + MAC_A + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04",       # ARP cut short
    ip_frame(A, B, ipv4.PROTO_UDP, udp.build(A, B, 1, 2, b"x" * 40))[:14 + 20 + 4],  # truncated
    _bad_udp_checksum(),
    _bad_ip_version(),
], ids=["empty", "5-bytes", "ip-no-header", "arp-short", "udp-truncated", "udp-bad-checksum",
        "ip-version-6"])
def test_malformed_frame_gives_a_malformed_line_instead_of_raising(frame):
    out = TextTrace().format(frame, 2_500_000_000, tag="b")
    assert out.startswith("2.500000 b [malformed frame, %d bytes: " % len(frame))
    assert out.endswith("]")
    assert len(out) > len("2.500000 b [malformed frame, 0 bytes: ]")


def test_malformed_reason_is_specific():
    assert "checksum" in line(_bad_udp_checksum()).lower()
    assert "version" in line(_bad_ip_version()).lower()


def test_unknown_ethertype_is_a_line_not_an_error():
    f = ethernet.build(BCAST, MAC_A, 0x88B5, b"\x00" * 46)
    assert line(f) == "ethertype 0x88b5, length 60"
