"""Learning store-and-forward switch."""

from wirestack.sim import DecisionLog, Fault, LinkParams, Nic, Scheduler, Switch
from wirestack.units import MS, SEC, US


def mac(i):
    return bytes([2, 0, 0, 0, 0, i])


def uframe(dst_i, src_i, seq=0):
    return mac(dst_i) + mac(src_i) + b"\x88\xb5" + bytes([seq]) + bytes(60)


def build(n=3, **kw):
    s = Scheduler()
    log = DecisionLog(level="full")
    sw = Switch(s, log=log, seed=1, **kw)
    rx = {i: [] for i in range(n)}
    nics, links = [], []
    for i in range(n):
        nic = Nic(s, f"h{i}", mac(i), lambda f, i=i: rx[i].append((s.now, f)))
        links.append(sw.attach(nic, params=LinkParams(rate_bps=100_000_000, delay=1 * US)))
        nics.append(nic)
    return s, sw, log, nics, links, rx


def test_learns_and_stops_flooding():
    s, sw, log, nics, links, rx = build(3)
    s.call_at(0, nics[0].send, uframe(1, 0))          # h1 unknown: flooded
    s.run()
    assert len(rx[1]) == 1
    assert nics[2].counters["eth.rx_not_for_us"] == 1  # h2 saw the flood
    assert sw.mac_table() == {"02:00:00:00:00:00": 0}
    s.call_at(s.now + 1 * MS, nics[1].send, uframe(0, 1))   # h0 known: port 0 only
    s.call_at(s.now + 2 * MS, nics[0].send, uframe(1, 0, 1))  # h1 now known too
    s.run()
    assert len(rx[0]) == 1 and len(rx[1]) == 2
    assert nics[2].counters["eth.rx_not_for_us"] == 1   # no more floods reached h2
    assert sw.mac_table() == {"02:00:00:00:00:00": 0, "02:00:00:00:00:01": 1}
    fwd = log.filter(event="forwarded")
    assert [e["flood"] for e in fwd] == [True, True, False, False]


def test_forwarded_frame_keeps_its_id_across_the_switch():
    s, sw, log, nics, links, rx = build(2)
    s.call_at(0, nics[0].send, uframe(1, 0))
    s.run()
    (sent,) = log.filter(event="sent")
    delivered = log.filter(event="delivered", frame=sent["frame"])
    assert [e["to"] for e in delivered] == ["switch.p0", "h1"]
    assert "delivered to h1" in log.why(sent["frame"])


def test_store_and_forward_timing():
    s, sw, log, nics, links, rx = build(2)
    s.call_at(0, nics[0].send, uframe(1, 0))      # 75 + 4 bytes = 632 bits = 6.32 us at 100 Mbit/s
    s.run()
    # serialized twice (in, then out) plus two 1 us cables
    assert rx[1][0][0] == 2 * 6320 + 2 * 1000


def test_entries_age_out_and_flooding_resumes():
    s, sw, log, nics, links, rx = build(3, aging=1 * SEC)
    s.call_at(0, nics[1].send, uframe(0, 1))
    s.run()
    assert "02:00:00:00:00:01" in sw.mac_table()
    s.run_until(2 * SEC)
    assert sw.mac_table() == {}     # h1 has been silent longer than the aging time
    before = nics[2].counters["eth.rx_not_for_us"]
    s.call_at(s.now, nics[0].send, uframe(1, 0))
    s.run()
    assert nics[2].counters["eth.rx_not_for_us"] == before + 1   # flooded again
    assert len(rx[1]) == 1


def test_broadcast_floods_to_all_but_ingress():
    s, sw, log, nics, links, rx = build(4)
    s.call_at(0, nics[2].send, b"\xff" * 6 + mac(2) + b"\x88\xb5" + bytes(60))
    s.run()
    assert [len(rx[i]) for i in range(4)] == [1, 1, 0, 1]


def test_switch_drops_bad_fcs_frames():
    s, sw, log, nics, links, rx = build(2)
    links[0].add_fault(Fault("corrupt", nth=1))
    s.call_at(0, nics[0].send, uframe(1, 0))
    s.run()
    assert rx[1] == []
    assert sw.counters["eth.rx_fcs_errors"] == 1
    assert sw.mac_table() == {}    # nothing learned from a damaged frame
