"""Point-to-point link: delays, queue, impairments, determinism, down/up."""

import zlib

import pytest

from wirestack.sim import DecisionLog, Link, LinkParams, Nic, Scheduler
from wirestack.units import MS, SEC, US

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def frame(seq, size=100):
    """A frame to B carrying a sequence number; ``size`` bytes without FCS."""
    head = MAC_B + MAC_A + b"\x88\xb5" + seq.to_bytes(4, "big")
    return head + bytes(size - len(head))


def seq_of(f):
    return int.from_bytes(f[14:18], "big")


class Net:
    def __init__(self, params, seed=1, level="full", check_fcs=True, b_params=None):
        self.s = Scheduler()
        self.log = DecisionLog(level=level)
        self.rx = []  # (time, frame)
        self.a = Nic(self.s, "a", MAC_A, lambda f: None)
        self.b = Nic(self.s, "b", MAC_B, lambda f: self.rx.append((self.s.now, f)), check_fcs=check_fcs)
        self.link = Link(self.s, self.a, self.b, params, b_params, seed=seed, log=self.log)

    def send_at(self, t, f):
        self.s.call_at(t, self.a.send, f)

    def seqs(self):
        return [seq_of(f) for _, f in self.rx]


def test_serialization_delay_is_bits_over_rate():
    n = Net(LinkParams(rate_bps=1_000_000))
    n.send_at(0, frame(0, 996))     # 1000 bytes with FCS = 8000 bits = 8 ms at 1 Mbit/s
    n.send_at(0, frame(1, 996))     # waits for the first: done at 16 ms
    n.s.run()
    assert [t for t, _ in n.rx] == [8 * MS, 16 * MS]


def test_serialization_rounds_up_to_whole_ns():
    n = Net(LinkParams(rate_bps=3_000_000_000))
    n.send_at(0, frame(0, 96))      # 800 bits / 3e9 = 266.67 ns -> 267
    n.s.run()
    assert n.rx[0][0] == 267


def test_propagation_delay_adds_to_serialization():
    n = Net(LinkParams(rate_bps=10_000_000, delay=5 * MS))
    n.send_at(1 * SEC, frame(0, 121))   # 125 bytes = 1000 bits = 100 us
    n.s.run()
    assert n.rx[0][0] == 1 * SEC + 100 * US + 5 * MS


def test_infinite_rate_has_only_propagation_and_directions_are_independent():
    back = []
    n = Net(LinkParams(delay=2 * MS), b_params=LinkParams(delay=7 * MS))
    n.a.on_receive = lambda f: back.append(n.s.now)
    n.send_at(0, frame(0))
    n.s.call_at(0, n.b.send, MAC_A + MAC_B + b"\x88\xb5" + bytes(50))
    n.s.run()
    assert n.rx[0][0] == 2 * MS and back == [7 * MS]


def test_queue_overflow_drops_tail():
    n = Net(LinkParams(rate_bps=1_000_000, queue_limit=5))
    for i in range(20):
        n.send_at(0, frame(i))
    n.s.run()
    # one in the serializer + five waiting; the other 14 are dropped at the tail
    assert n.seqs() == [0, 1, 2, 3, 4, 5]
    drops = n.log.filter(event="queue_overflow")
    assert len(drops) == 14 and all(d["limit"] == 5 for d in drops)
    assert max(e["depth"] for e in n.log.filter(event="queued")) == 5


def test_mtu_exceeded():
    n = Net(LinkParams(mtu=1500))
    n.send_at(0, frame(0, 1514))
    n.send_at(0, frame(1, 1515))
    n.s.run()
    assert n.seqs() == [0]
    (e,) = n.log.filter(event="mtu_exceeded")
    assert e["size"] == 1501 and e["mtu"] == 1500


def test_loss_fraction_is_close_to_p():
    n = Net(LinkParams(loss=0.1), level="impairments")
    N = 20000
    for i in range(N):
        n.send_at(i * US, frame(i))
    n.s.run()
    lost = N - len(n.rx)
    assert abs(lost / N - 0.1) < 0.01
    assert len(n.log.filter(event="dropped_loss", model="independent")) == lost


def run_lossy(seed):
    n = Net(LinkParams(rate_bps=100_000_000, delay=1 * MS, jitter=200 * US, loss=0.05,
                       duplicate=0.02, reorder=0.02, corrupt=0.02, truncate=0.01), seed=seed)
    for i in range(2000):
        n.send_at(i * 50 * US, frame(i, 200))
    n.s.run()
    return list(n.log), n.rx


def test_same_seed_gives_identical_decisions_and_bytes():
    log1, rx1 = run_lossy(42)
    log2, rx2 = run_lossy(42)
    assert log1 == log2 and rx1 == rx2
    log3, _ = run_lossy(43)
    assert log3 != log1


def loss_bursts(seqs, total):
    got = set(seqs)
    bursts, run = [], 0
    for i in range(total):
        if i in got:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    return bursts


def test_gilbert_elliott_losses_come_in_bursts():
    N = 30000
    ge = Net(LinkParams(gilbert=(0.01, 0.25, 1.0, 0.0)), level="impairments")
    rate = 0.01 / (0.01 + 0.25)  # stationary share of the bad state
    ind = Net(LinkParams(loss=rate), level="impairments")
    for n in (ge, ind):
        for i in range(N):
            n.send_at(i * US, frame(i))
        n.s.run()
    b_ge = loss_bursts(ge.seqs(), N)
    b_ind = loss_bursts(ind.seqs(), N)
    mean_ge = sum(b_ge) / len(b_ge)
    mean_ind = sum(b_ind) / len(b_ind)
    assert 3.0 < mean_ge < 5.5          # theory: 1 / p_bad_to_good = 4
    assert mean_ind < 1.2
    assert abs(sum(b_ge) / N - rate) < 0.015   # similar overall loss, very different shape
    assert ge.log.filter(event="dropped_loss")[0]["model"] == "gilbert-bad"


def test_duplicate_delivers_twice_with_new_ids():
    n = Net(LinkParams(duplicate=1.0, delay=1 * MS))
    for i in range(3):
        n.send_at(i * MS, frame(i))
    n.s.run()
    assert n.seqs() == [0, 0, 1, 1, 2, 2]
    dups = n.log.filter(event="duplicated")
    assert len(dups) == 3
    assert all(d["frame"] != d["parent"] for d in dups)
    assert {d["parent"] for d in dups} == {e["frame"] for e in n.log.filter(event="sent")}


def test_reorder_lets_later_frames_overtake():
    n = Net(LinkParams(reorder=0.2, reorder_delay=350 * US, delay=1 * MS))
    N = 200
    for i in range(N):
        n.send_at(i * 100 * US, frame(i))
    n.s.run()
    seqs = n.seqs()
    assert sorted(seqs) == list(range(N))       # nothing lost
    held = {seq_of_sent(n, e["frame"]) for e in n.log.filter(event="reordered")}
    assert 20 < len(held) < 60
    # every held-back frame arrives after the three frames sent after it
    for s in held:
        later = [x for x in (s + 1, s + 2, s + 3) if x < N and x not in held]
        assert all(seqs.index(x) < seqs.index(s) for x in later)
    # and frames never held back stay in order among themselves
    plain = [s for s in seqs if s not in held]
    assert plain == sorted(plain)


def seq_of_sent(n, fid):
    # frame ids are handed out in sending order, starting at 1
    return fid - 1


def test_corruption_flips_exactly_the_logged_bits():
    n = Net(LinkParams(corrupt=1.0, corrupt_bits=3), check_fcs=False)
    n.b.promiscuous = True   # a flipped bit in the destination MAC must not hide the frame
    sent = [frame(i, 300) for i in range(50)]
    for i, f in enumerate(sent):
        n.send_at(i * US, f)
    n.s.run()
    events = n.log.filter(event="corrupted")
    assert len(events) == 50 and len(n.rx) == 50
    for (_, got), f, e in zip(n.rx, sent, events):
        assert len(e["bits"]) == 3
        wire = bytearray(f + zlib.crc32(f).to_bytes(4, "little"))
        for b in e["bits"]:
            wire[b // 8] ^= 0x80 >> (b % 8)
        assert got == bytes(wire[:-4])
        assert got != f or all(b >= len(f) * 8 for b in e["bits"])


def test_corrupted_frames_fail_fcs_when_checked():
    n = Net(LinkParams(corrupt=1.0))
    for i in range(20):
        n.send_at(i * US, frame(i))
    n.s.run()
    assert n.rx == []
    assert n.b.counters["eth.rx_fcs_errors"] == 20
    assert len(n.log.filter(event="fcs_drop", by="b")) == 20


def test_truncation_cuts_frames_short():
    n = Net(LinkParams(truncate=1.0), check_fcs=False)
    sent = [frame(i, 500) for i in range(100)]
    for i, f in enumerate(sent):
        n.send_at(i * US, f)
    n.s.run()
    events = n.log.filter(event="truncated")
    assert len(events) == 100
    assert all(e["old"] == 504 and 1 <= e["new"] < 504 for e in events)
    runts = sum(1 for e in events if e["new"] < 18)
    assert n.b.counters["eth.rx_runts"] == runts
    long_ones = [e for e in events if e["new"] >= 18]
    for (_, got), e in zip(n.rx, long_ones):
        assert got == sent[e["frame"] - 1][: e["new"] - 4]


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_jitter_keeps_order_by_default(dist):
    n = Net(LinkParams(delay=1 * MS, jitter=500 * US, jitter_dist=dist))
    for i in range(300):
        n.send_at(i * 10 * US, frame(i))
    n.s.run()
    assert n.seqs() == list(range(300))
    times = [t for t, _ in n.rx]
    assert min(t - i * 10 * US for i, t in enumerate(times)) >= 0
    assert len(set(times)) > 10   # the jitter is really there


def test_jitter_may_reorder_without_keep_order():
    n = Net(LinkParams(delay=1 * MS, jitter=500 * US, keep_order=False))
    for i in range(300):
        n.send_at(i * 10 * US, frame(i))
    n.s.run()
    seqs = n.seqs()
    assert sorted(seqs) == list(range(300)) and seqs != list(range(300))
    delays = [t - seq_of(f) * 10 * US for t, f in n.rx]
    assert min(delays) >= 500 * US and max(delays) <= 1500 * US


def test_link_down_and_up_at_scheduled_times():
    n = Net(LinkParams(delay=10 * US))
    n.link.schedule_down(1 * MS)
    n.link.schedule_up(2 * MS)
    for i in range(30):
        n.send_at(i * 100 * US, frame(i))
    n.s.run()
    assert n.seqs() == list(range(10)) + list(range(20, 30))
    assert len(n.log.filter(event="link_down")) == 10


def test_frame_in_flight_when_link_goes_down_is_lost():
    n = Net(LinkParams(delay=1 * MS))
    n.send_at(0, frame(0))
    n.link.schedule_down(500 * US)
    n.s.run()
    assert n.rx == []
    assert n.log.filter(event="link_down")[0]["in_flight"] is True


def test_rng_depends_on_seed_and_link_name_not_on_other_links():
    def decisions(extra_link):
        s = Scheduler()
        log = DecisionLog(level="impairments")
        if extra_link:
            x, y = Nic(s, "x", MAC_A), Nic(s, "y", MAC_B)
            Link(s, x, y, LinkParams(loss=0.5), seed=7, log=DecisionLog())
        a, b = Nic(s, "a", MAC_A), Nic(s, "b", MAC_B)
        Link(s, a, b, LinkParams(loss=0.3), seed=7, log=log)
        for i in range(200):
            s.call_at(i, a.send, frame(i))
        s.run()
        return [e["frame"] for e in log]

    assert decisions(False) == decisions(True)


def test_link_tap_sees_frames_as_sent():
    n = Net(LinkParams(loss=1.0))
    seen = []
    n.link.add_tap(lambda now, f: seen.append((now, f)))
    f = frame(0)
    n.send_at(5, f)
    n.s.run()
    assert seen == [(5, f)] and n.rx == []


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError):
        LinkParams(loss=1.5)
    with pytest.raises(ValueError):
        LinkParams(jitter_dist="pareto")
    with pytest.raises(ValueError):
        LinkParams(gilbert=(0.1, 0.2, 0.3))
    assert LinkParams(gilbert=(0.1, 0.2)).gilbert == (0.1, 0.2, 1.0, 0.0)
