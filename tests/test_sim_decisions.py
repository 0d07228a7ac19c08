"""The decision log: levels, bounds, queries, why()."""

import io
import json

import pytest

from wirestack.sim import DecisionLog, Link, LinkParams, Nic, Scheduler
from wirestack.units import MS, SEC, US

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
F = MAC_B + MAC_A + b"\x88\xb5" + bytes(100)


def run(level, params, n=100, **log_kw):
    s = Scheduler()
    log = DecisionLog(level=level, **log_kw)
    a, b = Nic(s, "a", MAC_A), Nic(s, "b", MAC_B)
    Link(s, a, b, params, seed=9, log=log)
    for i in range(n):
        s.call_at(1 * SEC + i * 100 * US, a.send, F)
    s.run()
    return log


def test_why_explains_a_lost_frame():
    log = run("impairments", LinkParams(loss=0.1, rate_bps=10_000_000))
    (lost, *_) = log.filter(event="dropped_loss")
    fid = lost["frame"]
    text = log.why(fid)
    sent_at = 1 * SEC + (fid - 1) * 100 * US
    stamp = f"{sent_at // SEC}.{sent_at % SEC // 1000:06d} s"
    assert text == f"frame {fid}: sent by a at {stamp} on link a<->b; dropped: independent loss (p=0.1)"


def test_why_tells_a_full_story_at_level_full():
    log = run("full", LinkParams(delay=2 * MS), n=1)
    text = log.why(1)
    assert text.startswith("frame 1: sent by a at 1.000000 s on link a<->b")
    assert "delivered to b at 1.002000 s" in text
    assert "in flight 2 ms" in text


def test_why_for_unknown_frame_says_so():
    log = run("impairments", LinkParams(), n=3)
    assert "no decisions recorded" in log.why(2)


def test_level_impairments_records_nothing_on_a_clean_link():
    assert len(run("impairments", LinkParams(rate_bps=1_000_000_000))) == 0
    full = run("full", LinkParams(rate_bps=1_000_000_000))
    assert {e["event"] for e in full} == {"sent", "delayed", "delivered"}
    assert len(full.filter(event="sent")) == 100


def test_level_off_records_nothing_but_ids_still_advance():
    log = run("off", LinkParams(loss=0.5))
    assert len(log) == 0
    assert log.next_id() == 101


def test_memory_is_bounded_oldest_forgotten():
    log = run("full", LinkParams(), n=100, max_entries=50)
    assert len(log) == 50 and log.forgotten == 250
    assert list(log)[-1]["event"] == "delivered" and list(log)[-1]["frame"] == 100
    assert log.frame(1) == []


def test_filter_frame_and_jsonl():
    log = run("full", LinkParams(duplicate=0.2), n=50)
    dup = log.filter(event="duplicated")[0]
    assert dup in log.frame(dup["parent"]) and dup in log.frame(dup["frame"])
    assert f"duplicated as frame {dup['frame']}" in log.why(dup["parent"])
    buf = io.StringIO()
    log.to_jsonl(buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == len(log)
    assert json.loads(lines[0]) == list(log)[0]


def test_jsonl_is_byte_identical_for_the_same_seed(tmp_path):
    p1, p2 = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    params = LinkParams(loss=0.1, corrupt=0.1, jitter=50 * US, delay=1 * MS)
    run("full", params).to_jsonl(p1)
    run("full", params).to_jsonl(p2)
    assert p1.read_bytes() == p2.read_bytes() and p1.stat().st_size > 0


def test_bad_level_rejected():
    with pytest.raises(ValueError):
        DecisionLog(level="verbose")
