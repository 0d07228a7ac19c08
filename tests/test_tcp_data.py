"""Data transfer: bulk under impairments, Nagle, delayed ACK, windows, persist, SWS."""

import hashlib
import random

import pytest

from tcp_harness import RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TcpConfig
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw


# ---------------------------------------------------------------------- bulk
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_one_megabyte_under_loss_reorder_duplication(seed):
    w = Wire(seed=seed, loss=0.03, reorder=0.03, dup=0.02, log=False, keep_trace=False)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    data = random.Random(seed).randbytes(1_000_000)
    got = pump(w, c, s, data, timeout=3600 * SEC)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.stats()["retransmits"] > 0
    # and back the other way on the same connection's reverse direction
    back = random.Random(seed + 100).randbytes(200_000)
    assert pump(w, s, c, back, timeout=3600 * SEC) == back


@pytest.mark.parametrize("opts", [dict(window_scaling=False, timestamps=False),
                                  dict(congestion_control="none"),
                                  dict(rcvbuf=4096, sndbuf=4096)])
def test_bulk_with_variants(opts):
    w = Wire(seed=11, loss=0.02, log=False, keep_trace=False)
    a, b = w.pair(TcpConfig(**opts))
    c, s, _ = connect_pair(w, a, b)
    data = random.Random(1).randbytes(300_000)
    assert pump(w, c, s, data, timeout=3600 * SEC) == data


def test_clean_transfer_has_no_retransmissions_and_sane_rtt():
    w = Wire(seed=12, delay=5 * MS)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    data = bytes(500_000)
    assert pump(w, c, s, data) == data
    st = c.stats()
    assert st["retransmits"] == 0 and st["dup_acks"] == 0
    assert st["rtt_samples"] > 5
    assert 10 * MS <= st["srtt"] <= 12 * MS          # 2 × 5 ms (+ delayed ACKs at most)
    assert st["rto"] == 1 * SEC                        # rto_min
    sizes = {len(x.data) for x in w.segs(a) if x.data}
    assert max(sizes) == 1448                          # 1460 - 12 bytes of timestamps


def test_window_limits_flight_and_receiver_not_reading():
    w = Wire(seed=13)
    a, b = w.pair(TcpConfig(rcvbuf=8192, window_scaling=False))
    c, s, _ = connect_pair(w, a, b)
    c.send(bytes(50_000))
    w.run(duration=2 * SEC)
    assert s.readable == 8192                      # receiver buffer full...
    last = w.segs(b)[-1]
    assert last.h.window == 0                      # ...window closed
    assert c.unsent == 50_000 - 8192
    got = bytearray()
    while len(got) < 50_000:
        try:
            got += s.recv(4096)
        except BlockingIOError:
            w.step()
    assert got == bytes(50_000)


# ---------------------------------------------------------------------- Nagle
def _small_writes(nodelay):
    p = RawPeer()
    _, s, theirs, ours = p.passive(nodelay=nodelay)
    for _ in range(10):
        s.send(b"x")
        p.poll()
    out = [x for x in p.take() if x.data]
    return p, s, theirs, ours, out


def test_nagle_coalesces_small_writes():
    p, s, theirs, ours, out = _small_writes(False)
    assert [len(x.data) for x in out] == [1]        # one small segment in flight
    p.inject(".", theirs, ours + 1)                 # its ACK releases the rest at once
    out = [x for x in p.take() if x.data]
    assert [len(x.data) for x in out] == [9]


def test_nodelay_sends_every_write():
    p, s, theirs, ours, out = _small_writes(True)
    assert [len(x.data) for x in out] == [1] * 10


def test_nagle_does_not_hold_full_segments():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.send(b"a")
    p.poll()
    s.send(bytes(3000))
    p.poll()
    out = [len(x.data) for x in p.take() if x.data]
    assert out == [1, 1460, 1460]                   # the 80-byte tail waits for the ACK


# ---------------------------------------------------------------------- delayed ACK
def test_delayed_ack_every_second_segment_and_timer():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs, ours, data=bytes(1000))
    assert p.take() == []                           # first segment: ACK delayed
    p.inject(".", theirs + 1000, ours, data=bytes(1000))
    out = p.take()
    assert len(out) == 1 and out[0].ack == theirs + 2000   # second: ACK now
    p.inject(".", theirs + 2000, ours, data=bytes(500))
    assert p.take() == []
    t0 = p.now
    p.next_timer()
    out = p.take()
    assert out and out[0].ack == theirs + 2500 and p.now - t0 == 200 * MS
    assert p.counters["tcp.delayed_acks"] == 1


def test_out_of_order_and_hole_fill_ack_immediately():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs + 1000, ours, data=bytes(1000))   # a hole before it
    out = p.take()
    assert len(out) == 1 and out[0].ack == theirs           # immediate duplicate ACK
    p.inject(".", theirs, ours, data=bytes(1000))           # fills the hole
    out = p.take()
    assert len(out) == 1 and out[0].ack == theirs + 2000
    assert s.recv(5000) == bytes(2000)


def test_out_of_order_fin_is_held_until_hole_filled():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject("F.", theirs + 10, ours, data=b"world")
    assert s.state == "ESTABLISHED"
    p.inject(".", theirs, ours, data=b"hello, ")
    p.inject(".", theirs + 7, ours, data=b"big")
    assert s.state == "CLOSE_WAIT"
    assert s.recv(100) == b"hello, bigworld" and s.recv(100) == b""


def test_segment_overlapping_received_data_is_trimmed():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs, ours, data=b"abcdef")
    p.inject(".", theirs + 3, ours, data=b"defghi")
    assert s.recv(100) == b"abcdefghi"
    p.inject(".", theirs, ours, data=b"abc")                # wholly old: ACK, drop
    out = p.take()
    assert out[-1].ack == theirs + 9
    assert p.counters["tcp.in_duplicate"] == 1


# ---------------------------------------------------------------------- windows
def test_zero_window_probing_with_persist_backoff():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.send(bytes(2920))
    p.poll()
    assert [len(x.data) for x in p.take()] == [1460, 1460]
    p.inject(".", theirs, ours + 2920, window=0)             # all acked, window closed
    s.send(b"more data")
    p.poll()
    assert [x for x in p.take() if x.data] == []             # nothing into a zero window
    times = []
    for _ in range(4):
        p.next_timer()
        probes = [x for x in p.take() if x.data]
        assert len(probes) == 1 and len(probes[0].data) == 1 and probes[0].seq == ours + 2920
        times.append(p.now)
        p.inject(".", theirs, ours + 2920, window=0)         # still closed
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times[0] == 1 * SEC                               # first probe after one RTO
    assert gaps == [2 * SEC, 4 * SEC, 8 * SEC]               # backoff doubles
    assert s.state == "ESTABLISHED"
    p.inject(".", theirs, ours + 2920, window=65535)          # window opens
    out = [x for x in p.take() if x.data]
    assert out and out[0].data == b"more data"
    assert p.counters["tcp.persist_probes"] == 4


def test_zero_window_probe_accepted_when_window_opens():
    """The receiving side: a probe into a closed window is answered with an ACK (window
    0), and data is accepted once the application reads."""
    p = RawPeer(TcpConfig(rcvbuf=2000, window_scaling=False))
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs, ours, data=bytes(1000))
    p.inject(".", theirs + 1000, ours, data=bytes(1000))
    ack = p.take()[-1]
    assert ack.h.window == 0 and ack.ack == theirs + 2000
    p.inject(".", theirs + 2000, ours, data=b"P")            # a probe
    out = p.take()
    assert out[-1].ack == theirs + 2000 and out[-1].h.window == 0
    assert s.recv(2000) == bytes(2000)
    p.poll()
    upd = p.take()
    assert upd and upd[-1].h.window == 2000                  # window update after the read


def test_receiver_sws_avoidance_no_tiny_window_updates():
    p = RawPeer(TcpConfig(rcvbuf=10_000, window_scaling=False))
    _, s, theirs, ours = p.passive()
    p.inject(".", theirs, ours, data=bytes(1460))
    p.inject(".", theirs + 1460, ours, data=bytes(1460))
    w0 = p.take()[-1].h.window
    assert w0 == 10_000 - 2920
    s.recv(100)                                    # frees 100 bytes: not worth announcing
    p.poll()
    assert p.take() == []
    p.inject(".", theirs + 2920, ours, data=bytes(100))
    p.inject(".", theirs + 3020, ours, data=bytes(100))
    last = p.take()[-1]
    # Announcing the 100 freed bytes would move the right edge by 100 < min(buf/2, MSS)
    # (RFC 9293 §3.8.6.2.2), so the edge stays at theirs + 10_000: the window shrinks
    # by exactly the data that arrived.
    assert last.ack == theirs + 3120
    assert last.h.window == 10_000 - 3120
    # the right edge never moves back (no shrinking) and moves by >= min(buf/2, MSS)
    edges = [x.ack + x.h.window for x in p.all if x.h.ack_flag and not x.has("S")]
    assert edges == sorted(edges)


def test_sender_sws_avoidance_waits_for_useful_window():
    p = RawPeer()
    _, s, theirs, ours = p.passive(window=20000)
    s.send(bytes(30000))
    p.poll()
    sent = sum(len(x.data) for x in p.take())
    assert sent == 4380                                 # IW = 3 segments (RFC 5681)
    # ACK everything but offer only 100 bytes of window: too small to bother (< half of
    # the largest window seen and < MSS), so nothing is sent until the override timer.
    p.inject(".", theirs, ours + 4380, window=100)
    assert [x for x in p.take() if x.data] == []
    p.next_timer()
    out = [x for x in p.take() if x.data]
    assert [len(x.data) for x in out] == [100]          # override timer: send what fits


# ---------------------------------------------------------------------- misc
def test_psh_and_urg_accepted_inline():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject("P.", theirs, ours, data=b"push")
    p.inject("U.", theirs + 4, ours, data=b"urgent", urgent=6)
    assert s.recv(100) == b"pushurgent"
    assert p.counters["tcp.in_urg"] == 1


def test_window_scaling_negotiated_both_ways():
    p = RawPeer(TcpConfig(rcvbuf=1 << 20))
    _, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=1460, wscale=7), window=100)
    st = s.stats()
    assert st["window_scaling"] and st["snd_wscale"] == 7 and st["rcv_wscale"] == 5
    synack = [x for x in p.all if x.has("S.")][0]
    assert synack.h.options.wscale == 5
    p.inject(".", theirs, ours, window=100)        # 100 << 7 = 12800 bytes
    assert s.stats()["snd_wnd"] == 12800


def test_timestamps_echoed_and_paws():
    p = RawPeer()
    opts = tcpw.encode_options(mss=1460, ts=(1000, 0))
    _, s, theirs, ours = p.passive(options=opts)
    ts = lambda v, e=0: tcpw.encode_options(ts=(v, e))
    p.inject(".", theirs, ours, data=b"a", options=ts(1005))
    p.inject(".", theirs + 1, ours, data=b"b", options=ts(1006))
    ack = p.take()[-1]
    # RFC 7323 §4.3: with delayed ACKs TS.Recent is taken from the earliest segment not
    # yet acknowledged (SEG.SEQ <= Last.ACK.sent), so the echo is 1005, not 1006.
    assert ack.h.options.ts_ecr == 1005
    p.inject(".", theirs + 2, ours, data=b"c", options=ts(1007))
    p.inject(".", theirs + 3, ours, data=b"d", options=ts(1008))
    assert p.take()[-1].h.options.ts_ecr == 1007
    p.inject(".", theirs + 4, ours, data=b"old", options=ts(900))   # PAWS: older timestamp
    assert p.counters["tcp.in_paws"] == 1
    assert s.recv(10) == b"abcd"


@pytest.mark.parametrize("seed", [1, 2])
def test_sequence_numbers_wrap_around(seed):
    w = Wire(seed=seed, loss=0.02, reorder=0.02, log=False, keep_trace=False)
    a, b = w.pair()
    # both ISNs just below 2**32: the transfer crosses the wrap in both directions
    a.tcp.initial_seq = lambda *args: 0xFFFFFFFF - 5000
    b.tcp.initial_seq = lambda *args: 0xFFFFFFFF - 100
    c, s, _ = connect_pair(w, a, b)
    data = random.Random(seed).randbytes(300_000)
    assert pump(w, c, s, data, timeout=3600 * SEC) == data
    assert pump(w, s, c, data[:50_000], timeout=3600 * SEC) == data[:50_000]
    assert c._conn.snd_una > 0xFFFFFFFF                # unwrapped counter went past 2**32
