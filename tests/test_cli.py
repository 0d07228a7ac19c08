"""Acceptance tests of the `wirestack` command, as a new user runs it: what it prints, its
exit status, the files it writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wirestack.cli import main
from wirestack.trace.pcap import PcapReader
from wirestack.wire import parse_frame

REPO = Path(__file__).resolve().parent.parent

HEADER = re.compile(r"^PING 198\.18\.0\.2 \(198\.18\.0\.2\) 56\(84\) bytes of data\.$")
REPLY = re.compile(r"^64 bytes from 198\.18\.0\.2: icmp_seq=(\d+) ttl=64 time=(\d+(?:\.\d+)?) ms$")
STATS_TITLE = re.compile(r"^--- 198\.18\.0\.2 ping statistics ---$")
SUMMARY = re.compile(r"^(\d+) packets transmitted, (\d+) received, (\d+(?:\.\d+)?)% packet loss, "
                     r"time (\d+)ms$")
RTT = re.compile(r"^rtt min/avg/max/mdev = (\d+\.\d{3})/(\d+\.\d{3})/(\d+\.\d{3})/(\d+\.\d{3}) ms$")

PING_ARGS = ["ping", "-c", "200", "--loss", "0.2", "--seed", "7"]


def run_main(capsys, argv):
    """Run `wirestack ARGV` in this process: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def check_ping_output(out: str, count: int):
    """Every line has iputils' shape; returns (replies {seq: ms}, summary numbers, rtt)."""
    lines = out.splitlines()
    assert HEADER.match(lines[0]), lines[0]
    replies: dict[int, float] = {}
    i = 1
    while lines[i]:
        m = REPLY.match(lines[i])
        assert m, f"not an iputils reply line: {lines[i]!r}"
        seq, ms = int(m.group(1)), float(m.group(2))
        assert 1 <= seq <= count and seq not in replies
        replies[seq] = ms
        i += 1
    assert STATS_TITLE.match(lines[i + 1]), lines[i + 1]
    summary = SUMMARY.match(lines[i + 2])
    assert summary, lines[i + 2]
    rtt = RTT.match(lines[i + 3]) if len(lines) > i + 3 else None
    assert len(lines) == i + (4 if replies else 3)
    transmitted, received, loss, _ = summary.groups()
    assert int(transmitted) == count
    assert int(received) == len(replies)
    assert float(loss) == pytest.approx(100 * (count - len(replies)) / count, abs=0.05)
    if replies:
        assert rtt, "no rtt line"
        mn, avg, mx, mdev = map(float, rtt.groups())
        assert mn <= avg <= mx and mdev >= 0
        assert mn == pytest.approx(min(replies.values()), abs=0.01)
        assert mx == pytest.approx(max(replies.values()), rel=0.01)
    return replies, (int(transmitted), int(received), float(loss)), rtt


# ------------------------------------------------------------------------------------------
# ping on the simulated wire
# ------------------------------------------------------------------------------------------

def test_ping_with_loss_reports_about_36_percent_in_iputils_format(capsys):
    status, out, err = run_main(capsys, PING_ARGS)
    assert status == 0
    assert err == ""
    replies, (tx, rx, loss), _ = check_ping_output(out, 200)
    # A round trip survives if the request and the reply both do: 1 - 0.8^2 = 36% lost.
    assert 28 <= loss <= 44
    # Default link: 0.5 ms each way, so a round trip takes about 1 ms (more only when an ARP
    # request was lost and retried).
    assert sorted(replies.values())[len(replies) // 2] == pytest.approx(1.0, abs=0.05)


def test_ping_same_seed_same_bytes_other_seed_other_output(capsys):
    _, first, _ = run_main(capsys, PING_ARGS)
    _, second, _ = run_main(capsys, PING_ARGS)
    _, other, _ = run_main(capsys, ["ping", "-c", "200", "--loss", "0.2", "--seed", "8"])
    assert first == second
    assert first != other
    replies7, *_ = check_ping_output(first, 200)
    replies8, *_ = check_ping_output(other, 200)
    assert set(replies7) != set(replies8)         # different packets were lost


@pytest.mark.parametrize("count", [1, 3])
def test_ping_on_a_perfect_wire_gets_every_reply(capsys, count):
    # The first request waits in the ARP queue while a resolves b: it is not lost.
    status, out, err = run_main(capsys, ["ping", "-c", str(count), "-i", "0.2"])
    assert status == 0
    replies, (tx, rx, loss), _ = check_ping_output(out, count)
    assert sorted(replies) == list(range(1, count + 1)) and loss == 0
    assert ", 0% packet loss," in out


def test_ping_with_total_loss_exits_1(capsys):
    status, out, err = run_main(capsys, ["ping", "-c", "3", "-i", "0.2", "--loss", "1"])
    assert status == 1
    replies, (tx, rx, loss), _ = check_ping_output(out, 3)
    assert replies == {} and loss == 100


def test_ping_pcap_writes_the_frames_on_the_wire(capsys, tmp_path):
    path = tmp_path / "ping.pcap"
    status, out, err = run_main(capsys, ["ping", "-c", "20", "--loss", "0.2", "--seed", "7",
                                         "-i", "0.1", "--pcap", str(path)])
    assert status == 0
    data = path.read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")   # pcap magic, little-endian
    frames = [parse_frame(f) for _, f in PcapReader(str(path))]
    requests = [f for f in frames if f.icmp is not None and f.icmp.type == 8]
    replies = [f for f in frames if f.icmp is not None and f.icmp.type == 0]
    # The capture sees frames as they are sent: every request; a reply for every request
    # that reached b (so at least as many as a received).
    assert sorted(f.icmp.seq for f in requests) == list(range(1, 21))
    received = int(SUMMARY.match(out.splitlines()[-2]).group(2))
    assert received <= len(replies) <= 20
    assert any(f.arp is not None for f in frames)


# ------------------------------------------------------------------------------------------
# bad arguments: one line on stderr, exit status 2
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["ping", "-c", "x"],
    ["ping", "-c", "0"],
    ["ping", "--loss", "2"],
    ["ping", "--loss", "-0.1"],
    ["ping", "--loss", "lots"],
    ["ping", "--seed", "abc"],
    ["ping", "--delay", "-1"],
    ["ping", "--no-such-option"],
    ["demo", "--size", "-5"],
    ["no-such-command"],
])
def test_bad_arguments_give_one_line_on_stderr_and_status_2(capsys, argv):
    status, out, err = run_main(capsys, argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("wirestack") and "error" in err


def test_unwritable_pcap_path_is_reported_in_one_line(capsys, tmp_path):
    bad = tmp_path / "no" / "such" / "dir" / "x.pcap"
    try:
        status, out, err = run_main(capsys, ["ping", "-c", "1", "--pcap", str(bad)])
    except OSError:
        pytest.fail("traceback instead of an error message")
    assert status in (1, 2)
    assert err.count("\n") == 1 and str(bad) in err


def test_bad_destination_is_reported_in_one_line(capsys):
    try:
        status, out, err = run_main(capsys, ["ping", "-c", "1", "not.an.address"])
    except ValueError:
        pytest.fail("traceback instead of an error message")
    assert status == 2
    assert err.count("\n") == 1 and "not.an.address" in err


# ------------------------------------------------------------------------------------------
# the entry points, in a fresh process
# ------------------------------------------------------------------------------------------

def _env():
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _script() -> str | None:
    for candidate in (Path(sys.executable).parent / "wirestack", REPO / ".venv" / "bin" / "wirestack"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("wirestack")


def test_installed_script_and_python_m_print_the_same_as_in_process(capsys):
    _, in_process, _ = run_main(capsys, PING_ARGS)
    script = _script()
    if script is None:
        pytest.skip("the `wirestack` script is not installed (pip install -e .)")
    for cmd in ([script] + PING_ARGS, [sys.executable, "-m", "wirestack"] + PING_ARGS):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert proc.stdout == in_process


def test_installed_script_bad_argument_exit_status(tmp_path):
    script = _script()
    if script is None:
        pytest.skip("the `wirestack` script is not installed (pip install -e .)")
    proc = subprocess.run([script, "ping", "-c", "x"], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1


# ------------------------------------------------------------------------------------------
# demo (needs the TCP engine)
# ------------------------------------------------------------------------------------------

def _tcp_engine_present() -> bool:
    try:
        from wirestack.tcp import TcpLayer  # noqa: F401
    except ImportError:
        return False
    return getattr(sys.modules["wirestack.tcp"], "__file__", None) is not None  # not a stub


needs_tcp = pytest.mark.skipif(not _tcp_engine_present(),
                               reason="the TCP engine (wirestack.tcp.TcpLayer) is not there yet")

DROP_COUNTERS = ("eth.rx_not_for_us", "eth.rx_unknown_type", "eth.rx_malformed", "ip.in_bad_checksum",
                 "ip.in_hdr_errors", "ip.in_bad_version", "ip.in_truncated", "ip.in_addr_errors",
                 "icmp.in_csum_errors", "icmp.in_malformed", "udp.in_csum_errors", "udp.in_hdr_errors",
                 "tcp.in_csum_errors", "tcp.in_hdr_errors", "tcp.in_bad_options",
                 "arp.in_malformed", "arp.in_unsupported")


@needs_tcp
def test_demo_transfers_intact_and_prints_the_same_twice(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--size", "100000", "--seed", "4", "--pcap", "d.pcap"]
    status, first, err = run_main(capsys, argv)
    assert status == 0, first + err
    pcap1 = (tmp_path / "d.pcap").read_bytes()
    status, second, _ = run_main(capsys, argv)
    assert first == second
    assert (tmp_path / "d.pcap").read_bytes() == pcap1
    assert re.search(r"^  sha256 ok: sent ([0-9a-f]{16})\.\.\., received \1\.\.\.$", first, re.M), first
    assert "64 bytes from 198.18.0.2: icmp_seq=1 " in first      # the ARP queue kept ping 1
    assert "to a closed port: Connection refused (b answered with ICMP port unreachable)" in first
    assert re.search(r"connection state left after TIME_WAIT: a 0, b 0", first)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "d.pcap"]   # nothing else written


@needs_tcp
def test_demo_without_fcs_check_corruption_is_caught_by_checksums(capsys, tmp_path):
    import json
    status, out, _ = run_main(capsys, ["demo", "--size", "100000", "--seed", "3", "--corrupt", "0.05",
                                       "--no-fcs", "--json", "--pcap", str(tmp_path / "d.pcap")])
    res = json.loads(out)
    assert status == 0 and res["sha256_ok"] is True
    assert res["sha256_received"] == res["sha256_sent"]
    corrupted = res["decisions"].get("corrupted", 0)
    assert corrupted > 0
    c = res["counters"]
    assert all(h.get("eth.rx_fcs_errors", 0) == 0 for h in c.values())   # nobody checked the CRC
    caught = sum(h.get(k, 0) for h in c.values() for k in DROP_COUNTERS)
    assert 0 < caught <= corrupted


def test_demo_plot_writes_a_png(tmp_path, capsys):
    png = tmp_path / "conn.png"
    status, out, err = run_main(capsys, ["demo", "--size", "100000", "--pcap", str(tmp_path / "d.pcap"),
                                         "--plot", str(png)])
    assert status == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert str(png) in out


def test_demo_exports_decisions_and_events_as_json_lines(tmp_path, capsys):
    import json
    dec, ev = tmp_path / "dec.jsonl", tmp_path / "ev.jsonl"
    status, out, err = run_main(capsys, ["demo", "--size", "100000", "--loss", "0.05",
                                         "--pcap", str(tmp_path / "d.pcap"),
                                         "--decisions", str(dec), "--events", str(ev)])
    assert status == 0, err
    decisions = [json.loads(line) for line in dec.read_text().splitlines()]
    events = [json.loads(line) for line in ev.read_text().splitlines()]
    assert any(d["event"] == "dropped_loss" for d in decisions)
    states = [(e["host"], e["new"]) for e in events if e["kind"] == "state"]
    assert ("a", "ESTABLISHED") in states and ("a", "TIME_WAIT") in states
