"""The labs across routers: traceroute, pmtud, fairness."""

import pytest

from wirestack.cli import main
from wirestack.labs.experiments import LABS
from wirestack.labs.internet import dumbbell, jain_index


def test_traceroute_lab_names_each_router_and_the_silent_one():
    rows = dict(LABS["traceroute"].runs(1))
    assert [r.answered_by for r in rows.values()] == [
        "198.18.0.2", "198.18.1.2", "* (no answer)", "198.18.3.2", "198.18.4.2"]
    assert [r.message for r in rows.values()] == ["time exceeded"] * 2 + ["-", "time exceeded",
                                                                          "port unreachable"]
    # Probe k crosses k links of 5 ms there and back, plus an ARP exchange on its last link
    # (10k + 10 ms); each of those 2k + 2 crossings has up to 1 ms of seeded jitter either way.
    for ttl, r in enumerate(rows.values(), 1):
        if r.rtt_ms is not None:
            assert abs(r.rtt_ms - (10 * ttl + 10)) <= 2 * ttl + 2, (ttl, r.rtt_ms)


def test_pmtud_lab_fragment_discover_black_hole():
    frag, discover, hole = (r for _, r in LABS["pmtud"].runs(1))
    assert frag.sha256_ok and frag.counters["r1"]["ip.frag_creates"] > 100
    assert discover.sha256_ok and "ip.frag_creates" not in discover.counters["r1"]
    assert discover.sender["snd_mss"] == 576 - 40 - 12       # timestamps take 12 bytes
    assert discover.counters["a"]["tcp.pmtu_updates"] == 1
    assert not hole.completed and hole.received == 0 and "stalled" in hole.error
    assert hole.counters["r1"]["icmp.out_suppressed"] == hole.counters["r1"]["ip.frag_fails"] > 0


def test_jain_index():
    assert jain_index([5, 5, 5, 5]) == 1.0
    assert jain_index([8, 0, 0, 0]) == 0.25
    assert jain_index([3, 1]) == pytest.approx(16 / 20)


def test_fairness_four_flows_share_the_router_queue():
    flows, out = dumbbell("newreno", delays_ms=(10, 10, 10, 10), seconds=12, warmup=4)
    total = sum(g for _, g in flows)
    # The bottleneck is full (10 Mbit/s framed, 1448 of every 1518 bytes are payload) ...
    assert 9.0e6 < total <= 10e6 * 1448 / 1518 * 1.01
    # ... it is shared fairly, and its queue overflowed (drop-tail) to make them back off.
    assert jain_index(g for _, g in flows) > 0.95
    assert out.fwd_queue_drops > 0 and out.fwd_queue_peak == 40
    # With RTTs 12 ms vs 82 ms NewReno favours the short one.
    flows, _ = dumbbell("newreno", delays_ms=(5, 40), seconds=12, warmup=4)
    assert flows[0][1] > 1.5 * flows[1][1]


def test_labs_are_listed_and_run_from_the_command_line(capsys):
    assert main(["lab"]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {name} " in listing for name in ("traceroute", "pmtud", "fairness"))
    assert main(["lab", "traceroute"]) == 0
    out, err = capsys.readouterr()
    assert "TTL 3  * (no answer)" in out and "port unreachable" in out and err == ""
