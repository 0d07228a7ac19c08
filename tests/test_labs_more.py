"""The labs added for each mechanism show what they claim, every lab is deterministic under
--seed (and the seed changes the run), takes --pcap/--plot/--html/--json, and its closing
lesson quotes the run's own numbers."""

from __future__ import annotations

import hashlib
import json
import re
import statistics

import pytest

from wirestack.cli import main
from wirestack.labs.experiments import LABS, run_lab


def runs(name, seed=1):
    return dict(LABS[name].runs(seed))


def test_at_least_fourteen_labs_listed_with_their_question(capsys):
    assert len(LABS) >= 14
    for name in ("time-wait", "karn", "hub-vs-switch", "bufferbloat", "arp-queue", "sack", "window-scaling",
                 "nagle-delayed-ack", "handshake"):
        assert name in LABS
    assert main(["lab"]) == 0
    out = capsys.readouterr().out
    for lab in LABS.values():
        assert lab.name in out and lab.question in out


def test_time_wait_lab():
    on, off = runs("time-wait").values()
    assert on.sha256_ok and "Address already in use" in on.reuse_refused and on.second_started_s > 60
    assert not off.sha256_ok and off.second_started_s < off.old_arrived_s


def test_karn_lab():
    on, off = runs("karn").values()
    assert on.sha256_ok and off.sha256_ok
    assert max(off.rtt_ms) > 1000 > max(on.rtt_ms)       # a sample spanning a whole timeout
    assert off.sender["srtt"] > 2 * on.sender["srtt"]


def test_hub_vs_switch_lab():
    hub, sw = runs("hub-vs-switch").values()
    assert hub.completed == sw.completed == 4
    assert hub.collisions > 50 and sw.collisions == 0
    assert sw.goodput_bps > 3 * hub.goodput_bps


def test_bufferbloat_lab():
    small, big = runs("bufferbloat").values()
    assert small.sha256_ok and big.sha256_ok
    assert max(small.queue) <= 20 < max(big.queue)
    assert statistics.median(big.rtt_ms) > 3 * statistics.median(small.rtt_ms)
    assert big.goodput_bps < 1.1 * small.goodput_bps


def test_arp_queue_lab():
    big, small = runs("arp-queue").values()
    assert big.echoed == big.sent == 8 and big.overflow == 0
    assert small.overflow == 7 and small.echoed == 1


def test_sack_lab():
    on, off = runs("sack", seed=2).values()
    assert on.sha256_ok and off.sha256_ok
    assert on.virtual_seconds < off.virtual_seconds
    assert on.counters["a"].get("tcp.rto_timeouts", 0) < off.counters["a"].get("tcp.rto_timeouts", 0)


def test_idle_lab():
    restart, keep = runs("idle").values()
    assert restart.sha256_ok and keep.sha256_ok
    assert restart.resumed_s == keep.resumed_s > 3          # the same first megabyte, then the pause
    assert restart.burst == 3                               # the initial window (RFC 5681 §3.1)
    assert keep.burst > 5 * restart.burst                   # the old window, at once
    assert restart.drops_after == 0 < keep.drops_after
    assert restart.counters["a"]["tcp.idle_restarts"] >= 1
    assert "tcp.idle_restarts" not in keep.counters["a"]


def test_window_scaling_lab():
    on, off = runs("window-scaling").values()
    assert on.sha256_ok and off.sha256_ok
    assert off.goodput_bps < 65535 * 8 / 0.1          # the 16-bit window's ceiling
    assert on.goodput_bps > 3 * off.goodput_bps


def test_nagle_delayed_ack_lab():
    both, nodelay, noack = runs("nagle-delayed-ack").values()
    assert statistics.median(both.latencies_ms) > 150         # the 200 ms delayed-ACK timer
    assert statistics.median(nodelay.latencies_ms) < 15 and statistics.median(noack.latencies_ms) < 30


def test_handshake_lab():
    clean, lost = runs("handshake").values()
    assert clean.reply == lost.reply == "hello, world"
    assert clean.syns == 1 and clean.rtos == 0 and lost.syns == 2 and lost.rtos == 1
    assert lost.connect_ms > 1000 > clean.connect_ms
    story = "\n".join(lost.steps)
    assert "LOST on the wire" in story and "RTO fired" in story and "TIME_WAIT → CLOSED" in story


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+\.\d+|\d{2,}", text))


@pytest.mark.parametrize("name", sorted(LABS))
def test_every_lab_is_seeded_and_its_lesson_quotes_the_run(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    digests = []
    for i, seed in enumerate((1, 1, 2)):
        assert main(["lab", name, "--seed", str(seed), "--pcap", f"r{i}.pcapng", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        files = [f for run in doc["runs"] for f in run["files"]]
        assert files and all(f.endswith(".pcapng") for f in files)
        digests.append(hashlib.sha256(b"".join(open(f, "rb").read() for f in files)).hexdigest())
        if i == 0:
            report = doc["report"]
    assert digests[0] == digests[1] != digests[2]
    lesson = report.split("In this run:", 1)[1]
    table = report.split("In this run:", 1)[0]
    # The closing lesson is made from the run: its numbers are the table's (or the run's own).
    assert _numbers(lesson), lesson
    assert _numbers(lesson) & _numbers(table) or name in ("handshake",)
    # ... rounded as the table rounds them: no lesson figure is a table figure cut shorter.
    for quoted in re.findall(r"\d+\.\d+", lesson):
        places = len(quoted.split(".")[1])
        assert not [shown for shown in re.findall(r"\d+\.\d+", table)
                    if len(shown.split(".")[1]) > places and f"{float(shown):.{places}f}" == quoted], quoted
    assert run_lab(name, seed=1).split("In this run:", 1)[1].strip() == lesson.strip()


def test_lab_with_every_view_option(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "handshake", "--pcap", "h.pcapng", "--plot", "h.png", "--html", "h.html",
                 "--ladder", "h.svg"]) == 0
    out = capsys.readouterr().out
    for f in ("h-1.pcapng", "h-2.pcapng", "h-1.png", "h-2.png", "h-1.svg", "h-2.svg", "h.html"):
        assert (tmp_path / f).stat().st_size > 1000, f
        assert f in out
    html = (tmp_path / "h.html").read_text()
    assert "clean wire" in html and "first SYN lost" in html
