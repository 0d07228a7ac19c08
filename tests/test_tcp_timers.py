"""Timers and loss recovery: RTO (RFC 6298) with backoff and Karn's rule, retransmission
limits, fast retransmit / NewReno (RFC 5681, RFC 6582), the event log."""

import pytest

from tcp_harness import B_IP, RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TcpConfig
from wirestack.units import MS, SEC


def data_segs(p):
    return [x for x in p.take() if x.data]


def test_rto_backoff_doubles_and_karn_takes_no_sample():
    p = RawPeer(TcpConfig(max_retries=10))
    _, s, theirs, ours = p.passive()
    samples0 = s.stats()["rtt_samples"]        # the handshake gave one sample
    s.send(b"x" * 100)
    p.poll()
    assert len(data_segs(p)) == 1
    times = []
    for _ in range(4):
        p.next_timer()
        out = data_segs(p)
        assert len(out) == 1 and out[0].seq == ours and len(out[0].data) == 100
        times.append(p.now)
    assert times == [1 * SEC, 3 * SEC, 7 * SEC, 15 * SEC]       # 1, 2, 4, 8 s apart
    assert [e["rto"] for e in p.log.filter("rto")] == [2 * SEC, 4 * SEC, 8 * SEC, 16 * SEC]
    assert [e["backoff"] for e in p.log.filter("rto")] == [1, 2, 3, 4]
    p.inject(".", theirs, ours + 100)                           # ACK of a retransmission
    st = s.stats()
    assert st["rtt_samples"] == samples0                        # Karn: ambiguous, no sample
    assert st["rto"] == 16 * SEC                                # backoff kept...
    s.send(b"y" * 10)
    p.poll()
    p.take()
    p.advance(50 * MS)
    p.inject(".", theirs, ours + 110)                           # ...until a clean sample
    st = s.stats()
    assert st["rtt_samples"] == samples0 + 1 and st["last_rtt"] == 50 * MS
    assert st["rto"] == 1 * SEC and st["backoff"] == 0


def test_rtt_estimator_follows_rfc6298():
    from wirestack.tcp.rtt import RttEstimator
    r = RttEstimator(1 * SEC, 200 * MS, 60 * SEC)
    assert r.rto == 1 * SEC
    r.sample(100 * MS)
    assert r.srtt == 100 * MS and r.rttvar == 50 * MS and r.rto == 300 * MS
    r.sample(200 * MS)
    assert r.rttvar == 50 * MS * 3 // 4 + 100 * MS // 4
    assert r.srtt == 100 * MS + 100 * MS // 8
    r.on_timeout()
    assert r.rto == 2 * (r.srtt + 4 * r.rttvar)
    for _ in range(20):
        r.on_timeout()
    assert r.rto == 60 * SEC                                    # capped (§2.5)


def test_retransmission_limit_gives_timeout_error():
    p = RawPeer(TcpConfig(max_retries=3))
    _, s, theirs, ours = p.passive()
    events = []
    s.on_event = lambda: events.append(s.state)
    s.send(b"hello")
    p.poll()
    for _ in range(10):
        if p.next_timer() is None:
            break
    assert isinstance(s.error, TimeoutError)
    assert s.state == "CLOSED" and p.layer.connection_count() == 0
    assert p.counters["tcp.retrans_segs"] == 3 and p.counters["tcp.timeouts"] == 1
    assert events and events[-1] == "CLOSED"
    with pytest.raises(TimeoutError):
        s.send(b"more")
    with pytest.raises(TimeoutError):
        s.recv(1)


def test_syn_retries_limit():
    p = RawPeer(TcpConfig(syn_retries=2))
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    while p.next_timer() is not None:
        pass
    syns = [x for x in p.all if x.has("S")]
    assert [x.t for x in syns] == [0, 1 * SEC, 3 * SEC]
    assert isinstance(s.error, TimeoutError) and p.now == 7 * SEC
    assert p.layer.connection_count() == 0


def test_half_open_child_gives_up_quietly():
    p = RawPeer(TcpConfig(syn_retries=1))
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(4)
    p.inject("S", 100)
    while p.next_timer() is not None:
        pass
    assert [x.flags for x in p.all] == ["S.", "S."]
    assert p.layer.connection_count() == 0 and lst.accept() is None


def _flight(p, s, n=8):
    """Have n full segments in flight; returns their seqs."""
    s.send(bytes(1460 * n))
    p.poll()
    out = data_segs(p)
    assert len(out) == n
    return [x.seq for x in out]


def test_fast_retransmit_on_third_dupack_not_second():
    p = RawPeer(TcpConfig(initial_window=8))
    _, s, theirs, ours = p.passive()
    _flight(p, s)
    s.send(bytes(1460 * 4))                          # more data so limited transmit can show
    p.poll()
    p.take()
    # segment 1 is lost; segments 2.. each produce a duplicate ACK for `ours`
    p.inject(".", theirs, ours)
    p.inject(".", theirs, ours)
    out = data_segs(p)
    assert all(x.seq != ours for x in out)           # no retransmission after two
    assert len(out) == 2                             # RFC 3042: two new segments
    p.inject(".", theirs, ours)
    out = data_segs(p)
    assert out[0].seq == ours and len(out[0].data) == 1460  # the third: fast retransmit
    assert s.stats()["dup_acks"] == 3
    rtx = p.log.filter("retransmit")
    assert rtx[-1]["reason"] == "fast" and rtx[-1]["seq"] == ours
    cw = p.log.filter("cwnd", reason="fast_retransmit")[-1]
    assert cw["ssthresh"] == 8 * 1460 // 2 + 2 * 1460 // 2 and cw["cwnd"] == cw["ssthresh"] + 3 * 1460
    assert s.stats()["in_recovery"]


def test_newreno_partial_ack_retransmits_next_hole():
    p = RawPeer(TcpConfig(initial_window=8))
    _, s, theirs, ours = p.passive()
    seqs = _flight(p, s)                              # segments 0 and 3 are lost
    for _ in range(3):
        p.inject(".", theirs, ours)
    assert data_segs(p)[0].seq == ours
    p.inject(".", theirs, seqs[3])                    # partial ACK: up to the next hole
    out = data_segs(p)
    assert out and out[0].seq == seqs[3]
    assert p.log.filter("retransmit")[-1]["reason"] == "partial_ack"
    assert s.stats()["in_recovery"]
    p.inject(".", theirs, ours + 8 * 1460)            # full ACK: recovery ends
    st = s.stats()
    assert not st["in_recovery"] and st["cwnd"] <= st["ssthresh"]


def test_rto_collapses_cwnd_and_goes_back():
    p = RawPeer(TcpConfig(initial_window=4))
    _, s, theirs, ours = p.passive()
    seqs = _flight(p, s, 4)
    p.next_timer()
    out = data_segs(p)
    assert [x.seq for x in out] == [ours]
    st = s.stats()
    assert st["cwnd"] == 1460 and st["ssthresh"] == 2 * 1460
    p.inject(".", theirs, seqs[1])                   # slow start again from SND.UNA
    out = data_segs(p)
    assert [x.seq for x in out] == [seqs[1], seqs[2]]


def test_slow_start_then_congestion_avoidance():
    w = Wire(seed=21, delay=10 * MS)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    conn = c._conn
    conn.cc.ssthresh = 20 * conn.snd_mss
    pump(w, c, s, bytes(2_000_000))
    log = [e for e in a.log.filter("cwnd") if e["reason"] == "ack"]
    ss = [e["cwnd"] for e in log if e["cwnd"] <= 20 * conn.snd_mss]
    ca = [e["cwnd"] for e in log if e["cwnd"] > 20 * conn.snd_mss]
    assert ss and ca
    steps = {b - a for a, b in zip(ca, ca[1:])}
    assert steps == {conn.snd_mss}                   # +1 MSS per window in avoidance


def test_event_log_entries_carry_conn_seq_ack():
    w = Wire(seed=22, loss=0.05)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    pump(w, c, s, bytes(300_000), timeout=3600 * SEC)
    kinds = {e["kind"] for e in a.log}
    assert {"state", "retransmit", "dupack", "cwnd"} <= kinds
    name = "%s:%d>%s:%d" % (*c.local, *c.remote)
    for e in a.log:
        if e["kind"] in ("state", "retransmit", "dupack", "cwnd", "rto"):
            assert e["conn"] == name and "seq" in e and "ack" in e
    off = Wire(seed=22, loss=0.05, log=False)
    a2, b2 = off.pair()
    c2, s2, _ = connect_pair(off, a2, b2)
    pump(off, c2, s2, bytes(100_000), timeout=3600 * SEC)
    assert len(a2.log) == 0


def test_zero_window_kept_open_while_answered_and_fails_when_silent():
    p = RawPeer(TcpConfig(max_retries=3))
    _, s, theirs, ours = p.passive()
    s.send(bytes(1460))
    p.poll()
    p.take()
    p.inject(".", theirs, ours + 1460, window=0)
    s.send(b"abc")
    p.poll()
    for _ in range(10):                  # answered probes: the connection stays
        p.next_timer()
        assert [len(x.data) for x in p.take()] == [1]
        p.inject(".", theirs, ours + 1460, window=0)
    assert s.state == "ESTABLISHED"
    for _ in range(10):                  # silence: it gives up like retransmissions
        if p.next_timer() is None:
            break
    assert isinstance(s.error, TimeoutError)


def test_syn_in_time_wait_reopens_connection():
    p = RawPeer(TcpConfig(msl=30 * SEC))
    lst, s, theirs, ours = p.passive()
    s.close()                             # server closes first: it will hold TIME_WAIT
    p.poll()
    p.take()
    p.inject("F.", theirs, ours + 1)
    p.take()
    conn = p.layer.connections()[0]
    assert conn.state == "TIME_WAIT"
    p.inject("S", theirs + 100000, sport=40000)   # same 4-tuple, higher sequence number
    out = p.take()
    assert out and out[0].has("S.") and out[0].ack == theirs + 100001
    assert (out[0].seq - ours) & 0xFFFFFFFF < 0x80000000 and out[0].seq != ours - 1
    assert p.counters["tcp.time_wait_reopened"] == 1
    assert p.layer.connections()[0].state == "SYN_RECEIVED"
    p.inject("S", theirs - 5, sport=40000)         # an old SYN would not have
    assert p.counters["tcp.time_wait_reopened"] == 1
