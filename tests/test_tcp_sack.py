"""SACK (RFC 2018), D-SACK (RFC 2883) and SACK-based loss recovery (RFC 6675), at the level
of segments: the test plays the peer (RawPeer) and checks every block and retransmission."""

import pytest

from tcp_harness import B_IP, RawPeer
from wirestack.tcp import TcpConfig
from wirestack.tcp.sack import Scoreboard

from wirestack.wire import tcp as tcpw

M32 = 0xFFFFFFFF
SACK_SYN = tcpw.encode_options(mss=1460, sack_permitted=True)


def rel(blocks, base):
    return [((l - base) & M32, (r - base) & M32) for l, r in blocks]


# ---------------------------------------------------------------------- negotiation
def test_sack_permitted_in_syn_and_only_echoed_when_offered():
    p = RawPeer()
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    assert p.take()[0].h.options.sack_permitted
    # passive side: the SYN,ACK carries it only if the SYN did
    for offered in (True, False):
        p = RawPeer()
        lst, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=1460, sack_permitted=offered))
        synack = [x for x in p.all if x.has("S.")][0]
        assert synack.h.options.sack_permitted == offered
        assert s.stats()["sack"] == offered


def test_sack_switch_off_neither_offers_nor_accepts():
    p = RawPeer(TcpConfig(sack=False))
    lst, s, theirs, ours = p.passive(options=SACK_SYN)
    assert not [x for x in p.all if x.has("S.")][0].h.options.sack_permitted
    assert s.stats()["sack"] is False
    p.inject(".", theirs + 500, ours, data=bytes(500))
    assert p.take()[-1].h.options.sack_blocks == ()


# ---------------------------------------------------------------------- RFC 2018 §7 examples
def _receiver(ts=False):
    """The DUT receives; its peer's left edge plays the role of 5000 in RFC 2018 §7."""
    opts = tcpw.encode_options(mss=1460, sack_permitted=True, ts=(100, 0) if ts else None)
    p = RawPeer(TcpConfig(delayed_ack=False))
    lst, s, theirs, ours = p.passive(options=opts)
    p.take()
    return p, s, theirs, ours


def _send(p, base, ours, k, ts=None):
    """Segment k (0-based) of the 8 x 500-byte burst; returns the ACK it triggered."""
    opts = tcpw.encode_options(ts=(ts, 0)) if ts else b""
    p.inject(".", base + 500 * k, ours, data=bytes([k]) * 500, options=opts)
    out = p.take()
    assert len(out) == 1
    return out[0]


def test_rfc2018_case1_first_four_received():
    p, s, L, ours = _receiver()
    for k in range(4):
        a = _send(p, L, ours, k)
    assert (a.ack - L) & M32 == 2000 and a.h.options.sack_blocks == ()     # ACK 7000, no SACK


def test_rfc2018_case2_first_segment_lost():
    p, s, L, ours = _receiver()
    for k in range(1, 8):
        a = _send(p, L, ours, k)
        assert a.ack == L                                                  # ACK 5000
        assert rel(a.h.options.sack_blocks, L) == [(500, 500 * (k + 1))]   # 5500-6000 ... 5500-9000


def test_rfc2018_case3_alternate_segments_lost_then_filled():
    p, s, L, ours = _receiver()
    a = _send(p, L, ours, 0)
    assert (a.ack - L) & M32 == 500 and a.h.options.sack_blocks == ()      # 5500, no SACK
    a = _send(p, L, ours, 2)                                               # 6000
    assert rel(a.h.options.sack_blocks, L) == [(1000, 1500)]
    a = _send(p, L, ours, 4)                                               # 7000
    assert rel(a.h.options.sack_blocks, L) == [(2000, 2500), (1000, 1500)]
    a = _send(p, L, ours, 6)                                               # 8000
    assert (a.ack - L) & M32 == 500
    assert rel(a.h.options.sack_blocks, L) == [(3000, 3500), (2000, 2500), (1000, 1500)]
    # "Suppose the 4th packet is received out of order": 6500 joins 6000-6500 and 7000-7500.
    a = _send(p, L, ours, 3)
    assert (a.ack - L) & M32 == 500
    assert rel(a.h.options.sack_blocks, L) == [(1000, 2500), (3000, 3500)]
    # "Suppose the 2nd packet is received": ACK 7500, SACK 8000-8500.
    a = _send(p, L, ours, 1)
    assert (a.ack - L) & M32 == 2500
    assert rel(a.h.options.sack_blocks, L) == [(3000, 3500)]
    assert s.recv(10_000) == b"".join(bytes([k]) * 500 for k in range(5))


@pytest.mark.parametrize("ts,limit", [(False, 4), (True, 3)])
def test_block_count_limited_by_option_space(ts, limit):
    p, s, L, ours = _receiver(ts=ts)
    for k in (1, 3, 5, 7, 9):
        a = _send(p, L, ours, k, ts=200 if ts else None)
    blocks = rel(a.h.options.sack_blocks, L)
    assert len(blocks) == limit
    assert blocks[0] == (4500, 5000)                     # the latest segment's block first
    assert blocks == [(4500, 5000), (3500, 4000), (2500, 3000), (1500, 2000)][:limit]
    assert len(a.raw) <= 60                              # header + options fit 60 bytes


# ---------------------------------------------------------------------- RFC 2883 D-SACK
def test_dsack_duplicate_below_cumulative_ack():
    # RFC 2883 §4.1.1: both ACKs lost, 3000-3499 retransmitted -> ACK 4000, SACK 3000-3500.
    p, s, L, ours = _receiver()
    _send(p, L, ours, 0)
    _send(p, L, ours, 1)
    a = _send(p, L, ours, 0)
    assert (a.ack - L) & M32 == 1000
    assert rel(a.h.options.sack_blocks, L) == [(0, 500)]
    assert p.counters["tcp.out_dsack"] == 1
    a = _send(p, L, ours, 2)                             # reported once only
    assert a.h.options.sack_blocks == ()


def test_dsack_duplicate_of_out_of_order_data_names_its_block_second():
    # RFC 2883 §4.2: 4000-4499 lost, 4500-4999 and 5000-5499 arrive, 5000-5499 again:
    # ACK 4000, SACK 5000-5500, 4500-5500.
    p, s, L, ours = _receiver()
    _send(p, L, ours, 0)
    _send(p, L, ours, 1)
    assert rel(_send(p, L, ours, 3).h.options.sack_blocks, L) == [(1500, 2000)]
    assert rel(_send(p, L, ours, 4).h.options.sack_blocks, L) == [(1500, 2500)]
    a = _send(p, L, ours, 4)
    assert (a.ack - L) & M32 == 1000
    assert rel(a.h.options.sack_blocks, L) == [(2000, 2500), (1500, 2500)]


def test_dsack_switch_off():
    p = RawPeer(TcpConfig(delayed_ack=False, dsack=False))
    lst, s, L, ours = p.passive(options=SACK_SYN)
    p.take()
    _send(p, L, ours, 0)
    assert _send(p, L, ours, 0).h.options.sack_blocks == ()


# ---------------------------------------------------------------------- the scoreboard
def test_scoreboard_update_merge_dsack_and_bounds():
    sb = Scoreboard(max_ranges=3)
    una, top = 1000, 20000
    new, d = sb.update([(3000, 4000), (5000, 6000)], una, top)
    assert new and not d and sb.ranges() == [(3000, 4000), (5000, 6000)] and sb.sacked == 2000
    new, d = sb.update([(4000, 5000)], una, top)              # fills the gap: one range
    assert new and sb.ranges() == [(3000, 6000)] and sb.sacked == 3000
    new, d = sb.update([(500, 900)], una, top)                # below SND.UNA: a D-SACK
    assert not new and d
    new, d = sb.update([(3500, 4500), (3000, 6000)], una, top)  # inside SACKed data: D-SACK
    assert not new and d
    new, d = sb.update([(7000, 30000), (9000, 8000)], una, top)  # past SND.MAX / reversed
    assert not new and sb.ignored == 2
    sb.update([(7000, 7100), (8000, 8100)], una, top)
    sb.update([(9000, 9100)], una, top)                       # a 4th island: over the bound
    assert len(sb) == 3 and sb.ignored == 3
    sb.advance(3500)
    assert sb.ranges()[0] == (3500, 6000) and sb.sacked == 2500 + 100 + 100
    sb.advance(7050)
    assert sb.ranges() == [(7050, 7100), (8000, 8100)]
    # 32-bit wrap: blocks are unwrapped next to SND.UNA
    sb = Scoreboard()
    una = (1 << 32) - 1000
    sb.update([(((1 << 32) + 500) & M32, ((1 << 32) + 1500) & M32)], una, una + 5000)
    assert sb.ranges() == [((1 << 32) + 500, (1 << 32) + 1500)]


def test_scoreboard_islost_and_pipe():
    mss = 1000
    sb = Scoreboard()
    una, high_data = 0, 10_000       # ten segments out: 0..9
    sb.update([(1000, 2000)], una, high_data)
    # one SACKed segment above the hole: nothing lost yet
    assert sb.lost_edge(una, mss) == una and not sb.is_lost(0, una, mss)
    assert sb.pipe(una, high_data, una, mss) == 9000
    sb.update([(3000, 4000)], una, high_data)
    assert sb.lost_edge(una, mss) == una                 # 2 ranges, 2 SMSS: not yet
    sb.update([(5000, 6000)], una, high_data)
    # three discontiguous SACKed ranges above segment 0: it is lost; so is 2000-3000? It
    # has two ranges (2 SMSS) above it: not lost. The boundary is the first range's start.
    assert sb.lost_edge(una, mss) == 1000
    assert sb.is_lost(0, una, mss) and not sb.is_lost(2000, una, mss)
    # pipe: unsacked not-lost octets (2000-3000, 4000-5000, 6000-10000) = 6000
    assert sb.pipe(una, high_data, una, mss) == 6000
    # ... plus the retransmitted octets below HighRxt (0-1000): 7000
    assert sb.pipe(una, high_data, 1000, mss) == 7000
    # more than (DupThresh-1)*SMSS bytes above: 2.5 SMSS in one range marks the hole lost
    sb2 = Scoreboard()
    sb2.update([(1000, 3500)], 0, 10_000)
    assert sb2.lost_edge(0, mss) == 1000
    sb3 = Scoreboard()
    sb3.update([(1000, 3000)], 0, 10_000)               # exactly 2 SMSS: not "more than"
    assert sb3.lost_edge(0, mss) == 0
    assert sb.first_hole(0, 1000) == 0 and sb.first_hole(1500, 5000) == 2000
    assert sb.first_hole(5500, 5000) is None


# ---------------------------------------------------------------------- RFC 6675 sender
def _sender(n_segs=10, window=60000, **cfg):
    """The DUT sends n_segs full segments (MSS 1000, no timestamps) to a peer offering a
    large window; returns (p, s, una, their seq)."""
    cfg.setdefault("initial_window", n_segs)
    cfg.setdefault("mss", 1000)
    p = RawPeer(TcpConfig(**cfg))
    lst, s, theirs, ours = p.passive(window=window, options=tcpw.encode_options(mss=1000, sack_permitted=True))
    p.take()
    return p, s, ours, theirs


def _ack(p, theirs, ack, blocks=(), window=60000):
    opts = tcpw.encode_options(sack_blocks=[(l & M32, r & M32) for l, r in blocks]) if blocks else b""
    p.inject(".", theirs, ack, window=window, options=opts)
    return [x for x in p.take() if x.data or x.has("F")]


def test_sack_recovery_retransmits_only_the_holes():
    # The peer's window is exactly the 10 segments: no limited transmit, no new data.
    p, s, una, theirs = _sender(window=10_000)

    def ack(a, blocks=()):
        return _ack(p, theirs, a, blocks, window=10_000)
    s.send(bytes(30_000))
    p.poll()
    first = [x for x in p.take() if x.data]
    assert len(first) == 10 and all(len(x.data) == 1000 for x in first)
    # segments 0, 2-3, 5 and 7 lost; the peer SACKs 1, then 4, 6, 8 ...
    B = lambda a, b: (una + 1000 * a, una + 1000 * b)
    out = ack(una, [B(1, 2)])
    assert out == []                                          # one dupack: nothing lost
    out = ack(una, [B(4, 5), B(1, 2)])
    assert out == [] and not s.stats()["in_recovery"]              # 2 ranges, 2 SMSS: not yet
    # a third range above segment 0: IsLost(HighACK+1), recovery at the 3rd dupack
    out = ack(una, [B(6, 7), B(4, 5), B(1, 2)])
    assert [x.seq - una for x in out] == [0]                  # pipe 7000 > cwnd 5000
    assert p.counters["tcp.sack_recoveries"] == 1
    ev = p.log.filter("sack_recovery")[-1]
    assert ev["phase"] == "enter" and (ev["recovery_point"] - una) & M32 == 10_000
    assert rel(ev["sacked"], una) == [(1000, 2000), (4000, 5000), (6000, 7000)]
    assert ev["pipe"] == 7000 and (ev["high_rxt"] - una) & M32 == 1000
    assert ev["cwnd"] == ev["ssthresh"] == 5000
    # segment 8 SACKed: the hole 2000-4000 has three ranges above it and is lost now;
    # pipe = 5000-6000, 7000-8000, 9000-10000 + 0-1000 retransmitted = 4000 -> one more
    # segment goes, from NextSeg rule 1: the next lost hole, 2000 (not 5000 or new data).
    out = ack(una, [B(8, 9), B(6, 7), B(4, 5), B(1, 2)])
    assert [x.seq - una for x in out] == [2000]
    ev = p.log.filter("scoreboard")[-1]
    assert ev["event"] == "dupack" and ev["pipe"] == 4000
    # segment 9 SACKed: 3000 bytes now lie above 5000-6000, so it is lost too; pipe =
    # 7000-8000 + retransmitted 0-1000, 2000-3000 = 3000: two more, both by rule 1.
    out = ack(una, [B(8, 10), B(6, 7), B(4, 5), B(1, 2)])
    assert [x.seq - una for x in out] == [3000, 5000]
    out = ack(una + 2000, [B(8, 10), B(6, 7), B(4, 5)])   # partial ACK
    rx = [(x.seq - una) & M32 for x in out]
    assert 1000 not in rx and 4000 not in rx and 6000 not in rx      # SACKed: never resent
    # a cumulative ACK covering everything ends the recovery
    snd_max = s._conn.snd_max
    ack(snd_max)
    assert not s.stats()["in_recovery"]
    assert p.log.filter("sack_recovery")[-1]["phase"] == "exit"


def test_pipe_limits_sending_during_recovery():
    p, s, una, theirs = _sender()
    s.send(bytes(40_000))
    p.poll()
    p.take()
    B = lambda a, b: (una + 1000 * a, una + 1000 * b)
    out = _ack(p, theirs, una, [B(1, 4)])        # 3 SMSS above the hole: lost at once
    conn = s._conn
    assert s.stats()["sack_recovery"]
    cwnd = conn.cc.cwnd
    assert cwnd == conn.cc.ssthresh == 5000      # FlightSize 10 segments / 2, no inflation
    # pipe = 10 - 3 SACKed - 1 lost + 1 retransmitted = 7 segments > cwnd: only the
    # retransmission itself may go.
    assert [x.seq - una for x in out] == [0]
    pipe = conn.recovery.sb.pipe(conn.snd_una, conn.snd_max, conn.recovery.high_rxt, conn.snd_mss)
    assert pipe == 7000
    # each further SACKed segment takes one out of pipe; new data (rule 2) follows once
    # cwnd - pipe >= 1 SMSS
    out = _ack(p, theirs, una, [B(1, 5)])
    assert out == []                            # pipe 6000 > cwnd
    out = _ack(p, theirs, una, [B(1, 6)])
    assert out == []                            # pipe 5000: cwnd - pipe < 1 SMSS
    out = _ack(p, theirs, una, [B(1, 7)])
    assert [x.seq - una for x in out] == [10_000]   # pipe 4000: one new segment (rule 2)


def test_rescue_retransmission_after_partial_ack():
    # The last segments are lost and nothing above them is SACKed: rules 1-3 find nothing;
    # rule 4 resends the segment with the highest outstanding octet once HighACK passed
    # RescueRxt.
    p, s, una, theirs = _sender(n_segs=10)
    s.send(bytes(10_000))
    s.shutdown_write()
    p.poll()
    out = p.take()
    assert sum(len(x.data) for x in out) == 10_000 and out[-1].has("F")
    B = lambda a, b: (una + 1000 * a, una + 1000 * b)
    out = _ack(p, theirs, una, [B(1, 8)])        # 0 lost, 1-7 SACKed; 8, 9 (+FIN) lost
    assert [x.seq - una for x in out] == [0]     # no rescue yet: HighACK <= RescueRxt
    conn = s._conn
    assert conn.recovery.rescue_rxt == una + 1000
    out = _ack(p, theirs, una + 8000)            # partial ACK past RescueRxt
    assert [((x.seq - una) & M32, len(x.data), x.has("F")) for x in out] == [(9000, 1000, True)]
    assert p.counters["tcp.sack_rescue_rxt"] == 1
    assert p.log.filter("retransmit")[-1]["reason"] == "rescue"
    assert conn.recovery.rescue_rxt == conn.recovery.recover       # once per recovery
    assert _ack(p, theirs, una + 8000) == []
    assert p.counters["tcp.sack_rescue_rxt"] == 1


def test_three_dupacks_without_islost_still_enter_recovery():
    # RFC 6675 §5 step (1): tiny SACKed pieces never make IsLost true, DupThresh does.
    p, s, una, theirs = _sender()
    s.send(bytes(10_000))
    p.poll()
    p.take()
    for k in range(3):
        out = _ack(p, theirs, una, [(una + 1000 + 10 * k, una + 1005 + 10 * k)])
    assert out and out[0].seq == una and s.stats()["sack_recovery"]


def test_rto_keeps_scoreboard_once_and_skips_sacked_data():
    p, s, una, theirs = _sender(n_segs=6)
    s.send(bytes(6000))
    p.poll()
    p.take()
    B = lambda a, b: (una + 1000 * a, una + 1000 * b)
    _ack(p, theirs, una, [B(2, 3)])
    _ack(p, theirs, una, [B(4, 5), B(2, 3)])      # two ranges: not yet lost, no recovery
    assert not s.stats()["in_recovery"]
    p.next_timer()                                # RTO
    p.poll()
    rx = sorted((x.seq - una) & M32 for x in p.take() if x.data)
    assert rx == [0]
    assert s._conn.recovery.sb.ranges() == [B(2, 3), B(4, 5)]
    assert p.log.filter("scoreboard", event="rto")
    # slow start after the timeout; go-back-N skips what was SACKed (2000-3000, 4000-5000)
    rx = [(x.seq - una) & M32 for x in _ack(p, theirs, una + 1000)]
    rx += [(x.seq - una) & M32 for x in _ack(p, theirs, una + 2000)]
    assert rx == [1000, 3000]
    # a second RTO in a row clears the marks (possible reneging, RFC 2018 §8)
    p.next_timer()
    p.next_timer()
    assert s._conn.recovery.sb.ranges() == [] and p.counters["tcp.sack_scoreboard_cleared"] == 1


def test_newreno_unchanged_without_sack():
    p = RawPeer(TcpConfig(initial_window=8, mss=1000))
    lst, s, theirs, una = p.passive(window=60000, options=tcpw.encode_options(mss=1000))
    s.send(bytes(8000))
    p.poll()
    p.take()
    for _ in range(3):
        p.inject(".", theirs, una, window=60000)
    out = [x for x in p.take() if x.data]
    assert [x.seq for x in out][:1] == [una]
    conn = s._conn
    assert conn.recovery.sb is None and not s.stats()["sack_recovery"] and s.stats()["in_recovery"]
    assert conn.cc.cwnd == conn.cc.ssthresh + 3 * 1000        # RFC 5681 inflation
