"""Shared medium: hub with and without CSMA/CD."""

from wirestack.sim import DecisionLog, Hub, Nic, Scheduler
from wirestack.units import US

BCAST = b"\xff" * 6


def mac(i):
    return bytes([2, 0, 0, 0, 0, i])


def bframe(src_i, seq, size=100):
    head = BCAST + mac(src_i) + b"\x88\xb5" + bytes([src_i, seq])
    return head + bytes(size - len(head))


def build(n, csma_cd, distances=None, **hub_kw):
    s = Scheduler()
    log = DecisionLog(level="full")
    hub = Hub(s, csma_cd=csma_cd, log=log, seed=5, **hub_kw)
    rx = {i: [] for i in range(n)}
    nics = []
    for i in range(n):
        nic = Nic(s, f"n{i}", mac(i), lambda f, i=i: rx[i].append((s.now, f)))
        hub.attach(nic, distance_m=(distances[i] if distances else 10 + 20 * i))
        nics.append(nic)
    return s, hub, log, nics, rx


def test_single_frame_timing_is_wire_time_plus_propagation():
    s, hub, log, nics, rx = build(2, csma_cd=True, distances=[10, 200])
    f = bframe(0, 0, size=121)            # 121 + FCS + 8 preamble = 133 bytes = 1064 bits
    s.call_at(0, nics[0].send, f)
    s.run()
    assert rx[1] == [(1064 * 100 + (10 + 200) * 5, f)]   # 100 ns/bit at 10 Mbit/s, 5 ns/m
    assert rx[0] == []                     # the sender does not hear its own frame


def test_csma_cd_four_stations_at_once_collide_back_off_and_all_get_through():
    s, hub, log, nics, rx = build(4, csma_cd=True)
    for i, nic in enumerate(nics):
        for seq in range(3):
            s.call_at(0, nic.send, bframe(i, seq))
    s.run()
    assert log.filter(event="collision")
    assert log.filter(event="backoff")
    assert not log.filter(event="excessive_collisions")
    for i in range(4):
        got = sorted((f[14], f[15]) for _, f in rx[i])
        want = sorted((j, q) for j in range(4) if j != i for q in range(3))
        assert got == want                 # every frame reached all 3 other stations, intact
        # a station's own frames arrive in the order it sent them
        for j in range(4):
            seqs = [f[15] for _, f in rx[i] if f[14] == j]
            assert seqs == sorted(seqs)
    # collided frames were retried under the same id, and each delivery is logged
    assert len(log.filter(event="delivered")) == 4 * 3 * 3
    b = log.filter(event="backoff")[0]
    assert 0 <= b["slots"] < 2 ** min(b["attempt"], 10)
    assert sum(n.counters["eth.tx_collisions"] for n in nics) == len(log.filter(event="collision"))


def test_carrier_sense_defers_instead_of_colliding():
    s, hub, log, nics, rx = build(3, csma_cd=True)
    s.call_at(0, nics[0].send, bframe(0, 0))
    s.call_at(20 * US, nics[1].send, bframe(1, 0))   # n0's signal has long reached n1
    s.run()
    assert not log.filter(event="collision")
    assert log.filter(event="deferred")
    assert [f[14] for _, f in rx[2]] == [0, 1]
    # n1 waited for the end of n0's frame plus the 9.6 us inter-frame gap
    t0, t1 = rx[2][0][0], rx[2][1][0]
    assert t1 - t0 >= (108 * 8 * 100) + 9600


def test_excessive_collisions_after_16_attempts():
    # slot_time 0 makes every backoff 0 slots: two equidistant stations can never win.
    s, hub, log, nics, rx = build(3, csma_cd=True, distances=[50, 50, 50], slot_time=0)
    s.call_at(0, nics[0].send, bframe(0, 0))
    s.call_at(0, nics[1].send, bframe(1, 0))
    s.run()
    ex = log.filter(event="excessive_collisions")
    assert len(ex) == 2 and all(e["attempts"] == 16 for e in ex)
    assert nics[0].counters["eth.tx_aborted_collisions"] == 1
    assert nics[1].counters["eth.tx_aborted_collisions"] == 1
    assert rx[2] == []
    assert len(log.filter(event="backoff")) == 2 * 15


def test_without_csma_cd_overlapping_frames_are_garbled():
    s, hub, log, nics, rx = build(3, csma_cd=False)
    s.call_at(0, nics[0].send, bframe(0, 0))
    s.call_at(30 * US, nics[1].send, bframe(1, 0))    # n0 still transmitting (86 us frame)
    s.call_at(1000 * US, nics[1].send, bframe(1, 1))  # alone on the wire: gets through
    s.run()
    cols = log.filter(event="collision")
    assert sorted(e["src"] for e in cols) == ["n0", "n1"]
    assert cols[0]["with"] == [cols[1]["frame"]]
    assert not log.filter(event="backoff")             # nobody listens, nobody retries
    assert [(f[14], f[15]) for _, f in rx[2]] == [(1, 1)]
    assert [(f[14], f[15]) for _, f in rx[0]] == [(1, 1)]


def test_hub_floods_unicast_and_nics_filter():
    s, hub, log, nics, rx = build(3, csma_cd=True)
    f = mac(1) + mac(0) + b"\x88\xb5" + bytes(50)
    s.call_at(0, nics[0].send, f)
    s.run()
    assert len(rx[1]) == 1 and rx[2] == []
    assert nics[2].counters["eth.rx_not_for_us"] == 1


def test_hub_is_deterministic():
    def run():
        s, hub, log, nics, rx = build(4, csma_cd=True)
        for i, nic in enumerate(nics):
            for seq in range(5):
                s.call_at(seq * 7 * US, nic.send, bframe(i, seq))
        s.run()
        return list(log), {i: list(v) for i, v in rx.items()}

    assert run() == run()
