"""CUBIC (RFC 9438), RFC 7323 finishing (RTT from TSecr, window scale from the buffer,
negotiation), the event log (rtt, cwnd, scoreboard), and every combination of the switches
over a lossy, reordering, duplicating wire."""

import hashlib
import itertools
import random

import pytest

from tcp_harness import B_IP, RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TcpConfig
from wirestack.tcp.congestion import Cubic, get
from wirestack.tcp.congestion.cubic import ALPHA, BETA, C
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw

MSS = 1000


# ---------------------------------------------------------------------- CUBIC
def _after_loss(w_segs=100):
    cc = Cubic(MSS)
    cc.cwnd = w_segs * MSS
    cc.ssthresh = 1 << 62
    cc.on_loss_fast(w_segs * MSS, 0)
    cc.on_recovery_exit(w_segs * MSS, 0)
    return cc


def test_cubic_selectable_and_beta_reduction():
    assert get("cubic") is Cubic
    p = RawPeer()
    _, s, _, _ = p.passive(congestion_control="cubic")
    assert s.stats()["congestion_control"] == "cubic"
    cc = _after_loss(100)
    assert cc.ssthresh == 70 * MSS and cc.cwnd == 70 * MSS     # beta_cubic = 0.7
    assert cc.w_max == 100
    cc2 = Cubic(MSS)
    cc2.cwnd = 100 * MSS
    cc2.on_loss_sack(100 * MSS, 0)                             # SACK recovery: no inflation
    assert cc2.cwnd == cc2.ssthresh == 70 * MSS
    cc3 = Cubic(MSS)
    cc3.cwnd = 100 * MSS
    cc3.on_rto(100 * MSS, 0)
    assert cc3.cwnd == MSS and cc3.ssthresh == 70 * MSS


def test_cubic_fast_convergence():
    cc = _after_loss(100)
    cc.cwnd = 80 * MSS                     # a second loss below the previous W_max
    cc.on_loss_fast(80 * MSS, 0)
    assert cc.w_max == pytest.approx(80 * (1 + BETA) / 2)
    cc.fast_convergence = False
    cc.cwnd = 60 * MSS
    cc.on_loss_fast(60 * MSS, 0)
    assert cc.w_max == pytest.approx(60)


def test_cubic_concave_then_convex_around_w_max():
    # RTT 100 ms, W_max 100 segments: K = cbrt(30 / 0.4) = 4.2 s.
    cc = _after_loss(100)
    rtt = 100 * MS
    now = 0
    samples = []
    for _ in range(100):                   # 10 s: one window of ACKs per RTT
        w = cc.cwnd
        for _ in range(max(1, w // MSS)):
            cc.on_ack(MSS, now, rtt, w)
        now += rtt
        samples.append((now / SEC, cc.cwnd / MSS, cc.region))
    k = cc.k
    assert k == pytest.approx((30 / C) ** (1 / 3), rel=1e-6)
    grow = [b[1] - a[1] for a, b in zip(samples, samples[1:])]
    t = [s[0] for s in samples[1:]]
    early = [g for g, x in zip(grow, t) if x < k - 1.5]
    near = [g for g, x in zip(grow, t) if abs(x - k) < 0.5]
    late = [g for g, x in zip(grow, t) if x > k + 2.5]
    assert early[0] > early[-1] > 0                 # concave: growth slows towards W_max
    assert max(near) < early[0] / 3                 # the plateau around W_max
    assert late[-1] > late[0] > max(near)           # convex: growth speeds up beyond
    assert any(r == "concave" for _, _, r in samples) and any(r == "convex" for _, _, r in samples)
    # the window follows the curve one RTT ahead: W_cubic(t) within a few segments
    for x, wnd, _ in samples:
        if 1 < x < 9:
            assert abs(wnd - cc.w_cubic(x)) < 8


def test_cubic_reno_friendly_region_at_small_rtt():
    # RTT 1 ms: the cubic curve barely moves in 200 RTTs, Reno's estimate grows by
    # ALPHA segments per RTT -- cwnd follows W_est.
    cc = _after_loss(100)
    rtt = 1 * MS
    now = 0
    for _ in range(200):
        w = cc.cwnd
        for _ in range(w // MSS):
            cc.on_ack(MSS, now, rtt, w)
        now += rtt
    assert cc.region == "reno_friendly"
    assert cc.cwnd / MSS == pytest.approx(cc.w_est, abs=0.01)
    assert cc.cwnd / MSS > cc.w_cubic(now / SEC) + 20
    # ALPHA per RTT up to cwnd_prior (100 segments), then 1 per RTT like Reno (§4.3)
    rtts_to_prior = 30 / ALPHA
    assert cc.cwnd / MSS == pytest.approx(100 + (200 - rtts_to_prior), abs=3)


def test_cubic_slow_start_below_ssthresh():
    cc = Cubic(MSS)
    w0 = cc.cwnd
    cc.on_ack(MSS, 0, None, w0)
    assert cc.cwnd == w0 + MSS and cc.region == "slow_start"


# ---------------------------------------------------------------------- RFC 7323
def test_window_shift_derived_from_receive_buffer():
    for buf, shift in ((65535, 0), (256 * 1024, 3), (16_000_000, 8), (1 << 30, 14)):
        p = RawPeer(TcpConfig(rcvbuf=buf))
        s = p.socket()
        s.connect((B_IP, 80))
        p.poll()
        assert p.take()[0].h.options.wscale == shift, buf


def test_window_scale_negotiated_both_sides():
    p = RawPeer(TcpConfig(rcvbuf=16_000_000))
    s, theirs, ours, lport = p.active(window=1000, options=tcpw.encode_options(mss=1460, wscale=7))
    st = s.stats()
    assert st["window_scaling"] and st["snd_wscale"] == 7 and st["rcv_wscale"] == 8
    assert st["snd_wnd"] == 1000                          # a SYN's window is never scaled
    p.inject(".", theirs, ours, window=1000, sport=80, dport=lport)
    assert s.stats()["snd_wnd"] == 1000 << 7
    s.send(b"x")
    p.poll()
    assert p.take()[0].h.window == 16_000_000 >> 8       # 62500 << 8: the whole buffer
    assert s.stats()["rcv_wnd"] == 16_000_000


@pytest.mark.parametrize("side", ["active", "passive"])
def test_window_scale_one_side_only_means_none_either_way(side):
    p = RawPeer(TcpConfig(rcvbuf=1 << 20))
    if side == "active":
        s, theirs, ours, lport = p.active(window=1000, options=tcpw.encode_options(mss=1460))
        p.inject(".", theirs, ours, window=1000, sport=80, dport=lport)
    else:
        _, s, theirs, ours = p.passive(window=1000, options=tcpw.encode_options(mss=1460))
        synack = [x for x in p.all if x.has("S.")][0]
        assert synack.h.options.wscale is None
        p.inject(".", theirs, ours, window=1000)
    st = s.stats()
    assert not st["window_scaling"] and st["snd_wscale"] == st["rcv_wscale"] == 0
    assert st["snd_wnd"] == 1000                          # taken unscaled
    s.send(b"y")
    p.poll()
    assert p.take()[0].h.window == 65535                  # our 1 MB capped, not scaled


def test_large_window_transfer_uses_more_than_64k_in_flight():
    w = Wire(seed=8, delay=20 * MS, log=False, keep_trace=False)
    a, b = w.pair(TcpConfig(rcvbuf=16_000_000, sndbuf=4_000_000, initial_window=10))
    c, s, _ = connect_pair(w, a, b)
    data = bytes(3_000_000)
    peak = {"f": 0}
    orig = w.step

    def step():
        peak["f"] = max(peak["f"], c.stats()["unacked"])
        return orig()
    w.step = step
    assert pump(w, c, s, data) == data
    assert peak["f"] > 4 * 65535
    assert c.stats()["snd_wscale"] == 8


def test_rtt_from_tsecr_even_for_a_retransmitted_segment():
    ts = lambda v, e=0: tcpw.encode_options(ts=(v, e))
    p = RawPeer(TcpConfig(rto_min=200 * MS))
    _, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=1460, ts=(100, 0)))
    n0 = s.stats()["rtt_samples"]
    s.send(b"z" * 10)
    p.poll()
    first = p.take()[0]
    p.next_timer()                                     # RTO: retransmission
    rtx = p.take()[0]
    assert rtx.seq == first.seq and rtx.h.options.ts_val != first.h.options.ts_val
    p.advance(30 * MS)
    # the ACK echoes the retransmission's TSval: an unambiguous sample (RFC 7323 §4)
    p.inject(".", theirs, ours + 10, options=ts(101, rtx.h.options.ts_val))
    st = s.stats()
    assert st["rtt_samples"] == n0 + 1
    assert 30 * MS <= st["last_rtt"] < 31 * MS
    ev = p.log.filter("rtt")[-1]
    assert isinstance(ev["rtt_ms"], float) and 30 <= ev["rtt_ms"] < 31
    assert {"srtt_ms", "rto_ms", "conn"} <= set(ev) and isinstance(ev["rto_ms"], float)


def test_paws_rejects_old_duplicate_and_keeps_data_out():
    ts = lambda v: tcpw.encode_options(ts=(v, 0))
    p = RawPeer()
    _, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=1460, ts=(1000, 0)))
    p.inject(".", theirs, ours, data=b"new", options=ts(1001))
    # an old duplicate from a previous incarnation: in window, but TSval older than TS.Recent
    p.inject(".", theirs + 3, ours, data=b"OLD", options=ts(500))
    assert p.counters["tcp.in_paws"] == 1
    assert s.recv(100) == b"new"
    p.inject(".", theirs + 3, ours, data=b"fresh", options=ts(1002))
    assert s.recv(100) == b"fresh"


# ---------------------------------------------------------------------- event log
def test_cwnd_and_recovery_events_carry_plot_fields():
    w = Wire(seed=4, loss=0.03, log=True, keep_trace=False)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    data = random.Random(4).randbytes(400_000)
    assert pump(w, c, s, data, timeout=3600 * SEC) == data
    cw = a.log.filter("cwnd")
    assert cw and all(isinstance(e["cwnd"], int) and "ssthresh" in e and "conn" in e for e in cw)
    rtt = a.log.filter("rtt")
    assert rtt and all({"rtt_ms", "srtt_ms", "rto_ms"} <= set(e) for e in rtt)
    rec = a.log.filter("sack_recovery")
    assert rec and {"sacked", "pipe", "high_rxt", "recovery_point", "cwnd", "ssthresh"} <= set(rec[0])
    assert a.log.filter("scoreboard")


# ---------------------------------------------------------------------- every combination
COMBOS = list(itertools.product([True, False], [True, False], [True, False],
                                ["newreno", "cubic", "none"]))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("ws,ts,sack,cc", COMBOS)
def test_every_switch_combination_survives_a_bad_wire(ws, ts, sack, cc, seed):
    w = Wire(seed=seed, loss=0.03, reorder=0.03, dup=0.02, log=False, keep_trace=False)
    a, b = w.pair(TcpConfig(window_scaling=ws, timestamps=ts, sack=sack, congestion_control=cc))
    c, s, _ = connect_pair(w, a, b)
    assert c.stats()["sack"] == sack and c.stats()["timestamps"] == ts
    data = random.Random(seed * 31 + 7).randbytes(1_000_000)
    got = pump(w, c, s, data, timeout=3600 * SEC)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    if sack:
        assert a.counters["tcp.sack_recoveries"] + a.counters["tcp.rto_timeouts"] > 0
