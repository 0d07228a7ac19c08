"""Header prediction (segment_arrives._predicted) is only a shortcut: with it on and off,
the same transfers put the same bytes on the wire at the same times, leave the same
counters, and deliver the same data -- while it does take most segments."""

from __future__ import annotations

import hashlib
import random

import pytest

from wirestack.tcp import TcpConfig
from wirestack.tcp.segment_arrives import SegmentArrives
from wirestack.units import MS

from tcp_harness import Wire, connect_pair, pump, recv_all, send_some

SCENARIOS = {
    "clean": dict(wire={}, cfg={}),
    "loss": dict(wire=dict(loss=0.03), cfg={}),
    "reorder+dup": dict(wire=dict(reorder=0.05, dup=0.03), cfg={}),
    "no sack, no delayed ack": dict(wire=dict(loss=0.02), cfg=dict(sack=False, delayed_ack=False)),
    "no timestamps": dict(wire=dict(loss=0.02), cfg=dict(timestamps=False)),
    "small window": dict(wire={}, cfg=dict(rcvbuf=8 * 1024)),
}


def run(name: str, prediction: bool, two_way: bool) -> tuple:
    sc = SCENARIOS[name]
    wire = Wire(seed=7, delay=2 * MS, **sc["wire"])
    cfg = TcpConfig(header_prediction=prediction, **sc["cfg"])
    a, b = wire.pair(cfg)
    c, s, _ = connect_pair(wire, a, b)
    data = random.Random(3).randbytes(300_000)
    if two_way:
        # Data both ways at once: segments carry data and acknowledge new data.
        back = random.Random(4).randbytes(200_000)
        got_b = bytearray()
        got_a = pump_both(wire, c, s, data, back, got_b)
        delivered = hashlib.sha256(got_a).hexdigest() + hashlib.sha256(got_b).hexdigest()
    else:
        delivered = hashlib.sha256(pump(wire, c, s, data)).hexdigest()
    segments = [(g.t, g.raw) for g in wire.trace]
    return segments, dict(a.counters), dict(b.counters), delivered


def pump_both(wire, c, s, data, back, got_b):
    got_a = bytearray()
    off = {"c": 0, "s": 0}

    def tick():
        off["c"] = send_some(c, data, off["c"])
        off["s"] = send_some(s, back, off["s"])
        recv_all(s, got_a)
        recv_all(c, got_b)
        return len(got_a) == len(data) and len(got_b) == len(back)

    wire.run_until(tick)
    return bytes(got_a)


@pytest.mark.parametrize("two_way", [False, True], ids=["one-way", "two-way"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_prediction_changes_nothing_on_the_wire(name, two_way, monkeypatch):
    taken = {"n": 0}
    real = SegmentArrives._predicted

    def counting(self, *args):
        ok = real(self, *args)
        taken["n"] += ok
        return ok

    monkeypatch.setattr(SegmentArrives, "_predicted", counting)
    fast = run(name, True, two_way)
    fast_taken = taken["n"]
    taken["n"] = 0
    slow = run(name, False, two_way)
    assert taken["n"] == 0                         # switched off: never consulted
    assert fast[3] == slow[3]                      # the same data delivered
    assert fast[1] == slow[1] and fast[2] == slow[2]
    assert len(fast[0]) == len(slow[0])
    assert fast[0] == slow[0]                      # byte for byte, at the same times
    # ... and the shortcut carried a good part of the traffic (in-order data, pure ACKs).
    # (a sixth at least even with 3% loss, where much of the run is loss recovery)
    assert fast_taken * 6 > len(fast[0]), (fast_taken, len(fast[0]))
    if name in ("clean", "small window"):
        assert fast_taken * 2 > len(fast[0]), (fast_taken, len(fast[0]))
