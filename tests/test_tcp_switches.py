"""Each learning switch of TcpConfig has an effect that shows on the wire."""

import random

import pytest

from tcp_harness import B_IP, RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TcpConfig
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw


def data_segs(p):
    return [x for x in p.take() if x.data]


def test_retransmission_off_never_resends():
    p = RawPeer(TcpConfig(retransmission=False))
    _, s, theirs, ours = p.passive()
    s.send(b"lost")
    p.poll()
    p.take()
    assert p.layer.poll_at() is None                 # no timer at all
    p.advance(100 * SEC)
    assert data_segs(p) == [] and p.counters["tcp.retrans_segs"] == 0


def test_retransmission_on_resends():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.send(b"lost")
    p.poll()
    p.take()
    p.advance(2 * SEC)
    assert [x.data for x in data_segs(p)] == [b"lost"]


def test_congestion_control_none_sends_whole_window():
    for cc, expect in (("newreno", 3), ("none", 40)):
        p = RawPeer(TcpConfig(congestion_control=cc))
        _, s, theirs, ours = p.passive(window=40 * 1460)
        s.send(bytes(100 * 1460))
        p.poll()
        assert len(data_segs(p)) == expect, cc
        assert s.stats()["congestion_control"] == cc


def test_fast_retransmit_off_waits_for_rto():
    p = RawPeer(TcpConfig(fast_retransmit=False, initial_window=8))
    _, s, theirs, ours = p.passive()
    s.send(bytes(8 * 1460))
    p.poll()
    p.take()
    for _ in range(5):
        p.inject(".", theirs, ours)
    assert data_segs(p) == []
    assert s.stats()["dup_acks"] == 5
    p.next_timer()
    assert [x.seq for x in data_segs(p)] == [ours]
    assert p.log.filter("retransmit")[-1]["reason"] == "rto"


def test_nagle_switch_per_socket_and_setter():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.nodelay = True
    assert s.options.nodelay and s.nodelay   # (and the segments below leave at once)
    for _ in range(3):
        s.send(b"k")
        p.poll()
    assert len(data_segs(p)) == 3


def test_delayed_ack_off_acks_every_segment():
    p = RawPeer(TcpConfig(delayed_ack=False))
    _, s, theirs, ours = p.passive()
    for i in range(4):
        p.inject(".", theirs + 100 * i, ours, data=bytes(100))
    acks = p.take()
    assert [x.ack for x in acks] == [theirs + 100, theirs + 200, theirs + 300, theirs + 400]


def test_karn_off_samples_retransmitted_segment():
    def run(karn):
        p = RawPeer(TcpConfig(karn=karn))
        _, s, theirs, ours = p.passive()
        n0 = s.stats()["rtt_samples"]
        s.send(b"z")
        p.poll()
        p.next_timer()                        # RTO at 1 s, retransmission
        p.advance(10 * MS)
        p.inject(".", theirs, ours + 1)
        return s.stats(), n0
    st, n0 = run(True)
    assert st["rtt_samples"] == n0
    st, n0 = run(False)
    assert st["rtt_samples"] == n0 + 1 and st["last_rtt"] == 1010 * MS   # the ambiguity


def test_time_wait_off_closes_at_once():
    for tw, expect in ((True, 1), (False, 0)):
        w = Wire(seed=31)
        a, b = w.pair(TcpConfig(time_wait=tw))
        c, s, _ = connect_pair(w, a, b)
        c.close()
        w.run_until(lambda: s.state == "CLOSE_WAIT")
        s.close()
        w.run(duration=100 * MS)
        assert a.tcp.connection_count() == expect
        assert any(e["new"] == "TIME_WAIT" for e in a.log.filter("state"))


def test_ooo_buffering_off_drops_out_of_order():
    for on in (True, False):
        p = RawPeer(TcpConfig(ooo_buffering=on))
        _, s, theirs, ours = p.passive()
        p.inject(".", theirs + 5, ours, data=b"world")
        p.inject(".", theirs, ours, data=b"hello")
        p.advance(300 * MS)
        ack = p.take()[-1].ack
        if on:
            assert ack == theirs + 10 and s.recv(100) == b"helloworld"
        else:
            assert ack == theirs + 5 and s.recv(100) == b"hello"
            assert p.counters["tcp.ofo_dropped"] == 1


def test_ooo_off_still_transfers_under_loss():
    w = Wire(seed=32, loss=0.02, log=False, keep_trace=False)
    a, b = w.pair(TcpConfig(ooo_buffering=False))
    c, s, _ = connect_pair(w, a, b)
    data = random.Random(3).randbytes(200_000)
    assert pump(w, c, s, data, timeout=3600 * SEC) == data


def test_window_scaling_and_timestamps_switches():
    p = RawPeer(TcpConfig(window_scaling=False, timestamps=False))
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    o = p.take()[0].h.options
    assert o.wscale is None and o.ts_val is None and o.mss == 1460


def test_timer_knobs():
    p = RawPeer(TcpConfig(rto_initial=3 * SEC, syn_retries=1))
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    p.next_timer()
    assert p.now == 3 * SEC
    p2 = RawPeer(TcpConfig(delack_ms=40))
    _, s2, theirs, ours = p2.passive()
    p2.inject(".", theirs, ours, data=b"a")
    t = p2.now
    p2.next_timer()
    assert p2.now - t == 40 * MS and p2.take()


def test_rto_min_knob():
    p = RawPeer(TcpConfig(rto_min=200 * MS))
    _, s, theirs, ours = p.passive()
    s.send(b"q")
    p.poll()
    p.advance(10 * MS)
    p.inject(".", theirs, ours + 1)
    assert s.stats()["rto"] == 200 * MS


def test_buffer_knobs():
    p = RawPeer(TcpConfig(sndbuf=1000, rcvbuf=3000, window_scaling=False))
    _, s, theirs, ours = p.passive()
    assert s.send(bytes(5000)) == 1000
    assert s.send(b"x") == 0
    synack = [x for x in p.all if x.has("S.")][0]
    assert synack.h.window == 3000


@pytest.mark.parametrize("cc", ["none", "newreno"])
def test_lost_syn_lowers_the_initial_window_only_of_a_real_controller(cc):
    """RFC 5681 §3.1: after a lost SYN the initial window is one segment -- unless there is
    no congestion control, whose window is no limit at all (an attribute of the algorithm,
    not a threshold on cwnd)."""
    p = RawPeer()
    s = p.socket(congestion_control=cc)
    s.connect((p.peer_str, 80))
    p.poll()
    syn = [x for x in p.take() if x.has("S")]
    p.advance(2 * SEC)                                   # the SYN is "lost": RTO, sent again
    assert [x for x in p.take() if x.has("S")]
    p.inject("S.", 5000, syn[0].seq + 1, sport=80, dport=syn[0].h.sport,
             options=tcpw.encode_options(mss=1000))
    assert s.state == "ESTABLISHED"
    cwnd = s.stats()["cwnd"]
    if cc == "none":
        assert cwnd > 1 << 40
    else:
        assert cwnd == s.stats()["snd_mss"] == 1000
