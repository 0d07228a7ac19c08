"""RFC 5961 (challenge ACKs, ACK acceptability, rate limit), SYN cookies under a SYN flood
(RFC 4987), keep-alive (RFC 9293 §3.8.4, RFC 1122 4.2.3.6) and the user timeout (RFC 9293
§3.8.3, RFC 5482)."""

import random

import pytest

from tcp_harness import B_IP, RawPeer, Wire, connect_pair
from wirestack.tcp import TcpConfig
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw


# ---------------------------------------------------------------------- RFC 5961
def test_in_window_rst_gets_challenge_ack_by_default():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject("R", theirs + 100, 0)
    out = p.take()
    assert s.state == "ESTABLISHED"
    assert [(x.flags, x.seq, x.ack) for x in out] == [(".", ours, theirs)]
    assert p.counters["tcp.challenge_acks"] == 1 and p.counters["tcp.in_rst_challenged"] == 1
    p.inject("R", theirs, 0)                        # exactly RCV.NXT: accepted
    assert isinstance(s.error, ConnectionResetError)


def test_blind_data_with_unacceptable_ack_is_rejected():
    p = RawPeer()
    _, s, theirs, ours = p.passive(window=8192)
    # SEG.ACK far below SND.UNA - MAX.SND.WND: an attacker guessing the sequence number
    # but not the acknowledgment number
    p.inject(".", theirs, ours - 100_000, data=b"EVIL")
    out = p.take()
    with pytest.raises(BlockingIOError):
        s.recv(100)
    assert p.counters["tcp.in_ack_too_old"] == 1 and p.counters["tcp.challenge_acks"] == 1
    assert [(x.flags, x.ack) for x in out] == [(".", theirs)]
    # an ACK for data never sent is dropped too (data and all)
    p.inject(".", theirs, ours + 5000, data=b"EVIL")
    with pytest.raises(BlockingIOError):
        s.recv(100)
    assert p.counters["tcp.in_ack_unsent"] == 1 and p.counters["tcp.challenge_acks"] == 2
    # an old but acceptable ACK (within MAX.SND.WND) still delivers the data
    p.inject(".", theirs, ours - 100, data=b"good")
    assert s.recv(100) == b"good"
    # with the switch off RFC 9293 alone applies: the old ACK is ignored, data accepted
    p2 = RawPeer(TcpConfig(ack_check=False))
    _, s2, theirs2, ours2 = p2.passive(window=8192)
    p2.inject(".", theirs2, ours2 - 100_000, data=b"EVIL")
    assert s2.recv(100) == b"EVIL"


def test_challenge_ack_rate_limit_per_host():
    p = RawPeer(TcpConfig(challenge_ack_limit=100))
    _, s, theirs, ours = p.passive()
    for i in range(150):
        p.inject("R", theirs + 1 + i, 0)
    assert p.counters["tcp.challenge_acks"] == 100
    assert p.counters["tcp.challenge_ack_limited"] == 50
    assert len(p.take()) == 100
    p.advance(500 * MS)                              # the bucket refills: 50 more
    for i in range(80):
        p.inject("S", theirs + 1 + i, 0, options=tcpw.encode_options(mss=1460))
    assert p.counters["tcp.challenge_acks"] == 150
    assert p.counters["tcp.challenge_ack_limited"] == 80
    assert s.state == "ESTABLISHED"


# ---------------------------------------------------------------------- SYN flood
def test_syn_flood_keeps_state_bounded_and_serves_a_legit_client():
    backlog = 16
    w = Wire(seed=5, log=False, keep_trace=False)
    a, b = w.pair()
    lst = b.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(backlog)
    rng = random.Random(99)
    flood_opts = [tcpw.encode_options(mss=1460),
                  tcpw.encode_options(mss=1460, wscale=7, sack_permitted=True, ts=(12345, 0))]

    def flood(n):
        for _ in range(n):
            src = bytes([198, 19, rng.randrange(256), rng.randrange(1, 255)])
            seg = tcpw.build(src, b.ip, rng.randrange(1024, 65536), 80, rng.getrandbits(32), 0,
                             tcpw.SYN, 65535, b"", rng.choice(flood_opts))
            b.tcp.input(src, b.ip, memoryview(seg), w.now)
        b.tcp.poll(w.now)

    flood(5000)
    assert b.tcp.connection_count() == backlog       # the half-open queue is full
    c = a.socket()
    c.connect((B_IP, 80))
    server = {}
    for _ in range(200):                             # the handshake interleaved with the flood
        flood(25)
        w.step()
        if "s" not in server:
            x = lst.accept()
            if x is not None:
                server["s"] = x
        if "s" in server and c.state == "ESTABLISHED":
            break
    assert "s" in server and c.state == "ESTABLISHED"
    assert b.counters["tcp.syncookies_recv"] == 1
    st = server["s"].stats()
    assert st["window_scaling"] and st["timestamps"] and st["sack"]   # kept through the TSval
    half_open = [x for x in b.tcp.connections() if x.state == "SYN_RECEIVED"]
    assert len(half_open) <= backlog
    assert b.tcp.connection_count() <= backlog + 1   # no per-SYN state beyond the bound
    # data flows during the flood too
    data = random.Random(1).randbytes(300_000)
    got = bytearray()
    off = 0
    for _ in range(100_000):
        flood(2)
        if off < len(data):
            off += c.send(data[off:off + 65536])
        w.step()
        try:
            got += server["s"].recv(1 << 20)
        except BlockingIOError:
            pass
        if len(got) == len(data):
            break
    assert bytes(got) == data
    assert b.counters["tcp.syncookies_sent"] >= 5000 + 100 - backlog
    assert b.tcp.connection_count() <= backlog + 1


def test_cookie_without_timestamps_drops_wscale_and_sack():
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(1)
    p.inject("S", 1000, sport=40001)                              # fills the queue
    opts = tcpw.encode_options(mss=1400, wscale=7, sack_permitted=True)
    p.inject("S", 5000, sport=40002, options=opts)
    synack = p.take()[-1]
    assert synack.has("S.") and synack.h.options.wscale is None
    assert not synack.h.options.sack_permitted
    assert p.layer.connection_count() == 1
    p.inject(".", 5001, synack.seq + 1, sport=40002)
    assert p.layer.connection_count() == 2 and p.counters["tcp.syncookies_recv"] == 1
    conn = [x for x in p.layer.connections() if x.rport == 40002][0]
    assert conn.state == "ESTABLISHED" and conn.peer_mss == 1400 and not conn.ws_ok
    # a forged ACK (wrong cookie) is answered with a reset, and creates nothing
    p.inject(".", 7001, 12345, sport=40003)
    assert p.take()[-1].has("R") and p.counters["tcp.syncookies_failed"] == 1
    assert p.layer.connection_count() == 2


# ---------------------------------------------------------------------- keep-alive
def test_keepalive_probes_after_idle_and_kills_after_n_unanswered():
    cfg = TcpConfig(keepalive=True, keepalive_idle=60 * SEC, keepalive_interval=10 * SEC,
                    keepalive_probes=3)
    p = RawPeer(cfg)
    _, s, theirs, ours = p.passive()
    p.advance(59 * SEC)
    assert p.take() == []
    p.advance(1 * SEC)
    probe = p.take()
    assert [(x.flags, x.seq, len(x.data)) for x in probe] == [(".", ours - 1, 0)]
    p.inject(".", theirs, ours)                       # answered: idle again
    p.advance(59 * SEC)
    assert p.take() == []
    p.advance(1 * SEC)
    assert len(p.take()) == 1
    for _ in range(2):                                # unanswered
        p.advance(10 * SEC)
        assert len(p.take()) == 1
    assert s.state == "ESTABLISHED"
    p.advance(10 * SEC)
    assert isinstance(s.error, TimeoutError) and s.state == "CLOSED"
    assert p.counters["tcp.keepalive_probes"] == 4 and p.counters["tcp.keepalive_timeouts"] == 1


def test_keepalive_off_by_default_and_switchable_per_socket():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.advance(3 * 3600 * SEC)
    assert p.take() == []
    s.set_option(keepalive=True, keepalive_idle=5 * SEC)
    p.advance(5 * SEC)
    assert [x.seq for x in p.take()] == [ours - 1]


def test_keepalive_answered_by_our_engine_over_the_wire():
    w = Wire(seed=3)
    cfg = TcpConfig(keepalive=True, keepalive_idle=10 * SEC, keepalive_interval=SEC)
    a, b = w.pair(cfg)
    c, s, _ = connect_pair(w, a, b)
    w.run(duration=100 * SEC)
    # each side's probes are answered (and count as traffic for the other side's timer)
    assert c.state == s.state == "ESTABLISHED"
    assert a.counters["tcp.keepalive_probes"] + b.counters["tcp.keepalive_probes"] >= 8
    assert a.counters["tcp.keepalive_timeouts"] == b.counters["tcp.keepalive_timeouts"] == 0


# ---------------------------------------------------------------------- user timeout
def test_user_timeout_gives_up_without_progress():
    p = RawPeer(TcpConfig(user_timeout=5 * SEC))
    _, s, theirs, ours = p.passive()
    s.send(b"a" * 100)
    p.poll()
    p.advance(3 * SEC)
    p.inject(".", theirs, ours + 100)                # progress at t=3 s
    s.send(b"b" * 100)
    p.poll()
    p.advance(4900 * MS)
    assert s.state == "ESTABLISHED"
    p.advance(200 * MS)
    assert isinstance(s.error, TimeoutError) and "user timeout" in str(s.error)
    assert p.counters["tcp.user_timeouts"] == 1


def test_user_timeout_overrides_retry_count_and_idle_is_not_a_timeout():
    p = RawPeer(TcpConfig(user_timeout=600 * SEC, max_retries=2, rto_max=5 * SEC))
    _, s, theirs, ours = p.passive()
    p.advance(1000 * SEC)                            # idle: nothing outstanding
    assert s.state == "ESTABLISHED"
    s.send(b"x")
    p.poll()
    p.advance(500 * SEC)                             # far more than 2 retries
    assert s.state == "ESTABLISHED" and s.stats()["retransmits"] > 2
    p.advance(101 * SEC)
    assert isinstance(s.error, TimeoutError)


# ---------------------------------------------------------------------- RST as it arrived
@pytest.mark.parametrize("flags,extra", [("R", b"x" * 200), ("R.", b"x" * 50), ("RF.", b"x" * 5),
                                         ("RS.", b"")])
def test_rst_below_rcv_nxt_reaching_it_does_not_reset(flags, extra):
    """RFC 5961 §3.2 / RFC 9293 §3.10.7.4: the RST check looks at SEG.SEQ as it arrived.
    A reset starting below RCV.NXT whose data (or SYN/FIN) reaches RCV.NXT is outside the
    window for a RST: dropped silently, the connection lives."""
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    start = theirs - (len(extra) - 1 if extra else 1)    # the segment ends at/after RCV.NXT
    p.inject(flags, start, ours, data=extra)
    assert s.state == "ESTABLISHED" and s.error is None
    assert p.counters["tcp.in_rsts"] == 0
    assert p.counters["tcp.in_rst_out_of_window"] == 1
    assert p.take() == []                                # no answer to an out-of-window RST
    # a RST in the window but not exact gets a challenge ACK, even with data
    p.inject(flags, theirs + 10, ours, data=extra)
    assert s.state == "ESTABLISHED"
    assert [(x.flags, x.ack) for x in p.take()] == [(".", theirs)]
    assert p.counters["tcp.in_rst_challenged"] == 1
    p.inject(flags, theirs, ours, data=extra)            # exact: the connection is reset
    assert isinstance(s.error, ConnectionResetError)


# ---------------------------------------------------------------------- TS.Recent (RFC 7323)
def test_rejected_ack_does_not_poison_ts_recent():
    """RFC 7323 §4.3 / §5.3: TS.Recent is updated only by a segment that passed the
    acceptability checks, ACK included. One blind segment at RCV.NXT with an unacceptable
    ACK and a far-future TSval must not make PAWS reject every later segment of the peer."""
    p = RawPeer()
    _, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=1460, ts=(1000, 0)))
    assert s.stats()["timestamps"]
    p.inject(".", theirs, ours + 5000, data=b"EVIL",
             options=tcpw.encode_options(ts=(1000 + 0x7FFF0000, 0)))
    assert p.counters["tcp.in_ack_unsent"] == 1
    with pytest.raises(BlockingIOError):
        s.recv(100)
    # so is a segment whose ACK is far too old
    p.inject(".", theirs, ours - 200_000, data=b"EVIL",
             options=tcpw.encode_options(ts=(1000 + 0x7FFF0000, 0)))
    assert p.counters["tcp.in_ack_too_old"] == 1
    p.take()
    # the real peer's next segment, with its own (older) clock, still gets through
    p.inject(".", theirs, ours, data=b"good", options=tcpw.encode_options(ts=(1001, 0)))
    assert s.recv(100) == b"good"
    assert p.counters["tcp.in_paws"] == 0
    # and an accepted segment does update TS.Recent: it is echoed in our ACK
    p.advance(1 * SEC)
    acks = [x for x in p.take() if x.has(".")]
    assert acks and acks[-1].h.options.ts_ecr == 1001


# ---------------------------------------------------------------------- ACK storms
def _desynchronise(w, a, b, ca, sb):
    """A spoofed segment 'from b' with the right numbers gives a 10 bytes b never sent:
    a's RCV.NXT is now beyond b's SND.NXT, each side finds the other's ACKs unacceptable
    (RFC 5961 §5.2 on b, RFC 9293 §3.10.7.4 first check on a)."""
    conn_a = a.tcp.connections()[0]
    spoof = tcpw.build(b.ip, a.ip, conn_a.rport, conn_a.lport, conn_a.rcv_nxt & 0xFFFFFFFF,
                       conn_a.snd_nxt & 0xFFFFFFFF, tcpw.ACK | tcpw.PSH, 65535, b"X" * 10, b"")
    w.inject(B_IP, "198.18.0.1", spoof)


def test_mutual_reject_does_not_become_an_ack_storm():
    w = Wire(seed=3)
    a, b = w.pair()
    ca, sb, _ = connect_pair(w, a, b)
    _desynchronise(w, a, b, ca, sb)
    start = len(w.trace)
    w.run(duration=10 * SEC)
    acks = w.trace[start:]
    # At most one answer per 500 ms per side (RFC 5961 §7, Linux's tcp_invalid_ratelimit),
    # instead of one per round trip.
    assert len(acks) <= 2 * (10_000 // 500) + 4, len(acks)
    assert a.counters["tcp.oow_ack_limited"] + b.counters["tcp.oow_ack_limited"] > 0
    assert a.log.filter(kind="oow_ack_limited") or b.log.filter(kind="oow_ack_limited")
    # the exchange dies out instead of going on once per round trip; with the limit
    # switched off (oow_ack_interval=0) only the host-wide challenge ACK budget bounds it
    w2 = Wire(seed=3, log=False)
    a2, b2 = w2.pair(TcpConfig(oow_ack_interval=0))
    ca2, sb2, _ = connect_pair(w2, a2, b2)
    _desynchronise(w2, a2, b2, ca2, sb2)
    start = len(w2.trace)
    w2.run(duration=10 * SEC)
    assert len(w2.trace[start:]) > 5000
    assert b2.counters["tcp.oow_ack_limited"] == 0


def test_rate_limit_spares_segments_that_carry_data():
    """A retransmitted data segment (its ACK was lost) is answered at once every time:
    only answers to segments without data or FIN are limited, as in Linux."""
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs, ours, data=b"a" * 100)
    p.take()
    for _ in range(5):
        p.inject(".", theirs, ours, data=b"a" * 100)      # duplicate data
    assert len([x for x in p.take() if x.ack == theirs + 100]) == 5
    for _ in range(5):
        p.inject(".", theirs + 10**6, ours)               # pure ACK far outside the window
    assert len(p.take()) == 1
    assert p.counters["tcp.oow_ack_limited"] == 4
    p.advance(500 * MS)
    p.inject(".", theirs + 10**6, ours)
    assert len(p.take()) == 1


# ---------------------------------------------------------------------- SYN handling
@pytest.mark.parametrize("flags", ["SF", "SR"])
def test_syn_with_fin_or_rst_to_a_listener_is_dropped(flags):
    """SYN+FIN (an old scanner trick) and SYN+RST are nonsense: dropped and counted, as
    Linux and FreeBSD do; no TCB, no SYN,ACK."""
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(8)
    p.inject(flags, 1000, 0, options=tcpw.encode_options(mss=1460))
    assert p.take() == []
    assert p.layer.connection_count() == 0
    assert p.counters["tcp.in_syn_bad_flags"] == 1
    assert p.counters["tcp.passive_opens"] == 0


def test_duplicate_syns_get_a_rate_limited_synack_and_keep_the_initial_window():
    """30 copies of one SYN: not 30 SYN,ACKs, none counted as a retransmission, and the
    connection starts with the normal initial window (RFC 5681 §3.1 lowers it only when a
    SYN or SYN,ACK was lost)."""
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(8)
    opts = tcpw.encode_options(mss=1460)
    p.inject("S", 1000, 0, options=opts)
    for _ in range(30):
        p.inject("S", 1000, 0, options=opts)
    synacks = [x for x in p.take() if x.has("S.")]
    assert len(synacks) == 2                            # the answer to the SYN, one more
    p.advance(600 * MS)                                 # a later copy is answered again
    p.inject("S", 1000, 0, options=opts)
    synacks += [x for x in p.take() if x.has("S.")]
    assert len(synacks) == 3 and len({x.seq for x in synacks}) == 1
    assert p.counters["tcp.retrans_segs"] == 0
    assert p.counters["tcp.in_syn_duplicate"] == 31
    p.inject(".", 1001, synacks[0].seq + 1)
    s = lst.accept()
    assert s.state == "ESTABLISHED"
    assert s.stats()["cwnd"] > 1460
    # a SYN,ACK that really was lost (the RTO fired) still lowers the initial window
    p2 = RawPeer()
    lst2 = p2.socket()
    lst2.bind(("0.0.0.0", 80))
    lst2.listen(8)
    p2.inject("S", 1000, 0, options=opts)
    iss = p2.take()[0].seq
    p2.advance(1100 * MS)
    assert p2.counters["tcp.retrans_segs"] == 1
    p2.inject(".", 1001, iss + 1)
    assert lst2.accept().stats()["cwnd"] == 1460
