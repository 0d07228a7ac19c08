"""Scripted faults on a link."""

from types import SimpleNamespace

import pytest

from wirestack.sim import DecisionLog, Fault, Link, LinkParams, Nic, Scheduler
from wirestack.units import MS, SEC, US

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A = bytes([198, 18, 0, 1])
IP_B = bytes([198, 18, 0, 2])


def setup(decode=None, **nic_kw):
    s = Scheduler()
    log = DecisionLog(level="full")
    rx = []
    a = Nic(s, "a", MAC_A)
    b = Nic(s, "b", MAC_B, lambda f: rx.append((s.now, f)), **nic_kw)
    link = Link(s, a, b, LinkParams(delay=10 * US), seed=3, log=log, decode=decode)
    return s, a, link, log, rx


# -- with a tiny stand-in decoder: byte 14 says "SYN" (1) or not (0) -------------------------

def fake_decode(frame):
    if frame[12:14] != b"\x88\xb5":
        raise ValueError("not one of ours")   # MalformedPacket is a ValueError
    return SimpleNamespace(eth=True, arp=None, ip=None, icmp=None, udp=None,
                           tcp=SimpleNamespace(syn=bool(frame[14]), ack=False, fin=False, rst=False, psh=False))


def fake(seq, syn):
    return MAC_B + MAC_A + b"\x88\xb5" + bytes([syn]) + seq.to_bytes(2, "big") + bytes(60)


def test_drop_third_syn_with_fake_decoder():
    s, a, link, log, rx = setup(decode=fake_decode)
    f = link.add_fault(Fault("drop", match=lambda fr: fr.tcp and fr.tcp.syn, nth=3))
    pattern = [1, 0, 1, 0, 0, 1, 1, 0, 1]   # SYN-like frames at indexes 0, 2, 5, 6, 8
    for i, syn in enumerate(pattern):
        s.call_at(i * MS, a.send, fake(i, syn))
    s.call_at(20 * MS, a.send, MAC_B + MAC_A + b"\x08\x06" + bytes(60))  # undecodable: no match
    s.run()
    got = [int.from_bytes(fr[15:17], "big") for _, fr in rx if fr[12:14] == b"\x88\xb5"]
    assert got == [0, 1, 2, 3, 4, 6, 7, 8]          # index 5 was the third SYN
    assert f.matched == 5 and f.fired == 1
    (e,) = log.filter(event="fault")
    assert e["action"] == "drop" and "dropped: scripted fault" in log.why(e["frame"])


def test_every_count_and_window():
    s, a, link, log, rx = setup()
    f = link.add_fault(Fault("drop", every=2, count=3, start=1 * MS, end=100 * MS))
    for i in range(20):
        s.call_at(i * MS, a.send, fake(i, 0))
    s.run()
    got = [int.from_bytes(fr[15:17], "big") for _, fr in rx]
    # matching starts at frame 1 (t=1 ms); every 2nd match is dropped, at most 3 times
    assert got == [0, 1, 3, 5, 7] + list(range(8, 20))
    assert f.fired == 3


def test_duplicate_delay_and_truncate_faults():
    s, a, link, log, rx = setup(check_fcs=False)
    link.add_fault(Fault("duplicate", nth=1))
    link.add_fault(Fault("delay", nth=2, delay=5 * MS))
    link.add_fault(Fault("truncate", nth=4))
    for i in range(4):
        s.call_at(i * MS, a.send, fake(i, 0))
    s.run()
    seqs = [int.from_bytes(fr[15:17], "big") for _, fr in rx if len(fr) >= 17]
    assert seqs[:2] == [0, 0]                       # duplicated
    assert seqs.index(1) > seqs.index(2)            # frame 1 held back 5 ms, overtaken by 2
    (t,) = [e for e in log.filter(event="fault") if e["action"] == "truncate"]
    assert t["new"] < t["old"] == 81   # 77 bytes + FCS
    assert len(log.filter(event="duplicated")) == 1


def test_fault_direction():
    s, a, link, log, rx = setup()
    link.add_fault(Fault("drop"), direction="b>a")
    s.call_at(0, a.send, fake(0, 0))
    s.run()
    assert len(rx) == 1
    with pytest.raises(ValueError):
        link.add_fault(Fault("drop"), direction="sideways")
    with pytest.raises(ValueError):
        Fault("explode")


# -- with the real codecs --------------------------------------------------------------------

wire = pytest.importorskip("wirestack.wire")


def tcp_frame(flags, seq):
    from wirestack.wire import ethernet, ipv4, tcp
    seg = tcp.build(IP_A, IP_B, 40000, 80, seq, 0, flags, 65535)
    return ethernet.build(MAC_B, MAC_A, 0x0800, ipv4.build(IP_A, IP_B, 6, seg))


def echo_frame(reply, seq):
    from wirestack.wire import ethernet, icmp, ipv4
    msg = icmp.build_echo(not reply, 1, seq, b"ping" * 8)
    return ethernet.build(MAC_B, MAC_A, 0x0800, ipv4.build(IP_A, IP_B, 1, msg))


def test_drop_the_third_syn_real_frames():
    from wirestack.wire import parse_frame, tcp
    s, a, link, log, rx = setup()
    link.add_fault(Fault("drop", match=lambda f: f.tcp and f.tcp.syn, nth=3))
    flags = [tcp.SYN, tcp.ACK, tcp.SYN, tcp.SYN | tcp.ACK, tcp.ACK, tcp.SYN, tcp.SYN]
    for i, fl in enumerate(flags):
        s.call_at(i * MS, a.send, tcp_frame(fl, 1000 + i))
    s.run()
    got = [parse_frame(fr).tcp.seq - 1000 for _, fr in rx]
    assert got == [0, 1, 2, 4, 5, 6]   # SYN, SYN, SYN|ACK(3rd frame with SYN set) -> dropped


def test_corrupt_echo_replies_between_1_and_2_seconds():
    s, a, link, log, rx = setup()
    link.add_fault(Fault("corrupt", match=lambda f: f.icmp and f.icmp.type == 0,
                         start=1 * SEC, end=2 * SEC))
    sent_replies_in_window = 0
    for i in range(30):
        t = i * 100 * MS
        reply = i % 2 == 1
        sent_replies_in_window += reply and 1 * SEC <= t < 2 * SEC
        s.call_at(t, a.send, echo_frame(reply, i))
    s.run()
    faults = log.filter(event="fault")
    assert len(faults) == sent_replies_in_window == 5
    assert all(1 * SEC <= e["t"] < 2 * SEC and len(e["bits"]) == 1 for e in faults)
    b = link.nic_b
    assert b.counters["eth.rx_fcs_errors"] == 5
    assert len(rx) == 25
