"""Slow start and loss recovery beyond RFC 5681/6675, at the level of segments: HyStart++
(RFC 9406) leaving slow start on an RTT increase, and lost retransmissions found and resent
within SACK recovery (the idea of RACK, RFC 8985). The test plays the receiver (RawPeer)
and chooses when each ACK arrives, so it sets the RTT the sender sees."""

from tcp_harness import RawPeer
from wirestack.tcp import TcpConfig
from wirestack.tcp.congestion import NewReno
from wirestack.tcp.congestion.base import INITIAL_SSTHRESH
from wirestack.tcp.congestion.hystart import CSS_ROUNDS
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw

M32 = 0xFFFFFFFF
MSS = 1000


# ---------------------------------------------------------------------- HyStart++
def _ts_sender(**cfg):
    """The DUT sends (MSS 1000, so 988 bytes of data beside the timestamps, IW 10) to a
    peer with an 8 MB window."""
    cfg.setdefault("mss", MSS)
    cfg.setdefault("initial_window", 10)
    cfg.setdefault("sndbuf", 4 << 20)
    p = RawPeer(TcpConfig(**cfg))
    opts = tcpw.encode_options(mss=MSS, wscale=7, sack_permitted=True, ts=(1, 0))
    lst, s, theirs, ours = p.passive(window=65535, options=opts)
    p.take()
    return p, s, theirs


def _rounds(p, s, theirs, rtts):
    """One round per RTT in ``rtts`` (ns): the data segments the DUT sent arrive, and an
    ACK for every second one (each echoing that segment's TSval) returns ``rtt`` later.
    Returns the cwnd (segments) and HyStart++ phase after each round."""
    conn = s._conn
    out = [x for x in p.take() if x.data]
    seen = []
    for rtt in rtts:
        p.advance(rtt)
        acks = []
        for i in range(1, len(out), 2):
            seg = out[i - 1]
            acks.append((out[i].seq + len(out[i].data), seg.h.options.ts_val))
        fresh = []
        for ack, tsecr in acks:
            ts = tcpw.encode_options(ts=(p.now // MS, tsecr))
            p.inject(".", theirs, ack, window=65535, options=ts)
            fresh += [x for x in p.take() if x.data]
        if len(out) % 2:
            fresh = [out[-1]] + fresh            # the odd one rides on the next round
        out = fresh
        seen.append((conn.cc.cwnd // conn.snd_mss, conn.cc.hystart.phase))
        assert p.counters["tcp.retrans_segs"] == 0
    return seen


def test_hystart_stays_in_slow_start_while_the_rtt_is_flat():
    p, s, theirs = _ts_sender()
    s.send(bytes(3_000_000))
    p.poll()
    seen = _rounds(p, s, theirs, [100 * MS] * 6)
    # each ACK of two segments adds min(N, L*SMSS) = 2 segments: the window doubles
    assert [c for c, _ in seen] == [20, 40, 80, 160, 320, 640]
    assert all(ph == "slow_start" for _, ph in seen)
    assert s._conn.cc.ssthresh == INITIAL_SSTHRESH
    assert s._conn.cc.hystart.exits == 0


def test_hystart_leaves_slow_start_on_an_rtt_increase_then_css_ends_in_ca():
    p, s, theirs = _ts_sender()
    s.send(bytes(3_000_000))
    p.poll()
    # three rounds at 100 ms, then the RTT grows by 30 ms: more than RttThresh =
    # clamp(100 ms / 8, 4 ms, 16 ms) = 12.5 ms -> Conservative Slow Start once the round
    # has N_RTT_SAMPLE samples
    seen = _rounds(p, s, theirs, [100 * MS] * 3 + [130 * MS] * (CSS_ROUNDS + 2))
    assert seen[:3] == [(20, "slow_start"), (40, "slow_start"), (80, "slow_start")]
    assert seen[3][1] == "css" and seen[3][0] < 160     # the rest of the round grew less
    hs = s._conn.cc.hystart
    assert hs.exits == 1 and hs.css_baseline >= 130 * MS
    ev = p.log.filter("hystart")
    assert [(e["old"], e["new"]) for e in ev] == [("slow_start", "css"), ("css", "done")]
    assert ev[0]["round_min_rtt_ms"] >= 130 and ev[0]["last_round_min_rtt_ms"] < 101
    # CSS: a quarter of slow start's growth (x1.25 a round instead of x2) for CSS_ROUNDS
    # rounds (the first being the one in which CSS began), then congestion avoidance
    css = [c for c, ph in seen if ph == "css"]
    assert len(css) == CSS_ROUNDS
    assert all(1.1 < b / a < 1.3 for a, b in zip(css, css[1:]))
    assert seen[3 + CSS_ROUNDS][1] == "done"
    cc = s._conn.cc
    assert cc.ssthresh != INITIAL_SSTHRESH and cc.ssthresh <= cc.cwnd    # ssthresh = cwnd
    assert seen[-1][0] - seen[-2][0] <= 1                  # now 1 SMSS per RTT at most


def test_hystart_css_resumes_slow_start_when_the_rtt_falls_back():
    p, s, theirs = _ts_sender()
    s.send(bytes(3_000_000))
    p.poll()
    seen = _rounds(p, s, theirs, [100 * MS] * 3 + [130 * MS, 100 * MS])
    assert seen[3][1] == "css" and seen[4][1] == "slow_start"   # the increase was jitter
    assert s._conn.cc.hystart.resumes == 1
    assert s._conn.cc.ssthresh == INITIAL_SSTHRESH


def test_hystart_switch_off_is_standard_slow_start():
    p, s, theirs = _ts_sender(hystart=False)
    s.send(bytes(3_000_000))
    p.poll()
    conn = s._conn
    assert conn.cc.hystart is None
    out = [x for x in p.take() if x.data]
    p.advance(100 * MS)
    for i in range(1, len(out), 2):
        p.inject(".", theirs, out[i].seq + len(out[i].data), window=65535,
                 options=tcpw.encode_options(ts=(p.now // MS, out[i - 1].h.options.ts_val)))
    assert conn.cc.cwnd == 15 * conn.snd_mss    # RFC 5681: min(N, SMSS) per ACK, 5 ACKs


def test_hystart_only_in_the_initial_slow_start():
    cc = NewReno(MSS)
    cc.enable_hystart()
    cc.on_rto(20 * MSS, 0)                # a loss sets ssthresh: standard slow start now
    w = cc.cwnd
    cc.on_ack(2 * MSS, 0, None, 0)
    assert cc.cwnd == w + MSS             # min(N, SMSS), not HyStart++'s L = 8


# ---------------------------------------------------------------------- lost retransmissions
def _sack_sender(**cfg):
    """The DUT sends 10 full segments at once (MSS 1000, no timestamps, SACK)."""
    cfg.setdefault("initial_window", 10)
    cfg.setdefault("mss", MSS)
    p = RawPeer(TcpConfig(**cfg))
    lst, s, theirs, una = p.passive(window=60000,
                                    options=tcpw.encode_options(mss=MSS, sack_permitted=True))
    p.take()
    return p, s, una, theirs


def _sack(p, theirs, ack, blocks):
    opts = tcpw.encode_options(sack_blocks=[(l & M32, r & M32) for l, r in blocks])
    p.inject(".", theirs, ack, window=60000, options=opts)
    return [x for x in p.take() if x.data]


def test_lost_retransmission_is_sent_again_without_rto():
    p, s, una, theirs = _sack_sender()
    conn = s._conn
    s.send(bytes(40_000))
    p.poll()
    p.take()
    B = lambda a, b: (una + MSS * a, una + MSS * b)
    rel = lambda out: [((x.seq - una) & M32) // MSS for x in out]
    # segment 0 lost; 1-3 SACKed: recovery, segment 0 retransmitted (sent before new
    # data 10 ...)
    assert rel(_sack(p, theirs, una, [B(1, 4)])) == [0]
    cwnd = conn.cc.cwnd
    sent = []
    for k in range(5, 11):                 # the originals 4-9 arrive; new data goes
        sent += rel(_sack(p, theirs, una, [B(1, k)]))
    assert sent == [10, 11, 12, 13]
    # The retransmission of 0 is lost as well. New data sent after it arrives: 10, 11
    # (2 SMSS) could still be reordering ...
    assert rel(_sack(p, theirs, una, [B(1, 11)])) == [14]
    assert rel(_sack(p, theirs, una, [B(1, 12)])) == [15]
    assert p.counters["tcp.lost_retransmits"] == 0
    # ... a third segment sent after it (12) is the DupThresh evidence: 0 goes again, at
    # once, within the same recovery: no RTO, no second reduction of cwnd
    out = _sack(p, theirs, una, [B(1, 13)])
    assert rel(out) == [0, 16]
    assert p.counters["tcp.lost_retransmits"] == 1
    assert p.counters["tcp.rto_timeouts"] == 0
    assert p.counters["tcp.sack_recoveries"] == 1
    assert s.stats()["sack_recovery"] and conn.cc.cwnd == cwnd
    assert p.log.filter("lost_retransmit")[-1]["len"] == MSS
    assert [e["reason"] for e in p.log.filter("retransmit")] == ["sack", "lost_rtx"]
    # the second copy arrives: the cumulative ACK jumps, recovery goes on normally
    _sack(p, theirs, una + 14 * MSS, [])
    assert conn.snd_una == una + 14 * MSS
    assert p.counters["tcp.rto_timeouts"] == 0


def test_lost_retransmission_switch_off_waits_for_the_rto():
    p, s, una, theirs = _sack_sender(lost_retransmit=False)
    s.send(bytes(40_000))
    p.poll()
    p.take()
    B = lambda a, b: (una + MSS * a, una + MSS * b)
    _sack(p, theirs, una, [B(1, 4)])
    out = []
    for k in range(5, 20):
        out += _sack(p, theirs, una, [B(1, k)])
    assert una not in [x.seq for x in out]        # RFC 6675 alone never resends it
    assert p.counters["tcp.lost_retransmits"] == 0
    p.advance(2 * SEC)
    assert p.counters["tcp.rto_timeouts"] == 1


def test_reordered_retransmission_is_not_sent_twice():
    # Only data sent *after* the retransmission counts: originals SACKed later (they were
    # in flight before it) do not make it lost.
    p, s, una, theirs = _sack_sender()
    s.send(bytes(40_000))
    p.poll()
    p.take()
    B = lambda a, b: (una + MSS * a, una + MSS * b)
    _sack(p, theirs, una, [B(1, 4)])
    for k in range(5, 11):
        _sack(p, theirs, una, [B(1, k)])       # 4-9: all originals, sent before the copy
    assert p.counters["tcp.lost_retransmits"] == 0
    _sack(p, theirs, una + 10 * MSS, [])       # the copy arrives
    assert p.counters["tcp.lost_retransmits"] == 0
