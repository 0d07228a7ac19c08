"""`wirestack ping` edge cases, checked against what iputils ping does: the 16-bit sequence
number wrapping, the size limit, Ctrl-C, a destination whose ARP fails, -t."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from wirestack.apps.ping import ping
from wirestack.cli import main
from wirestack.runtime.sim import Network
from wirestack.trace.pcap import PcapReader
from wirestack.wire import parse_frame

WIRESTACK = [sys.executable, "-m", "wirestack"]
SUMMARY = re.compile(r"^(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?"
                     r"(?:, \+(\d+) errors)?, ([\d.]+)% packet loss, time \d+ms$", re.M)


def run(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def _ping_near_the_wrap(first_seq: int, count: int):
    lines: list[str] = []
    with Network(seed=1) as net:
        a = net.host("a", "198.18.0.1/24")
        net.host("b", "198.18.0.2/24")
        net.link(a, net.hosts["b"], delay_ms=0.5)
        result = net.run(ping(a, "198.18.0.2", count=count, interval=0.01, first_seq=first_seq,
                                on_line=lines.append))
    return result, lines


def test_sequence_numbers_wrap_at_65536_without_false_duplicates_or_losses():
    # Requests 65530 ... 65535, 0, 1, ... 13: the ICMP field has 16 bits (RFC 792), and
    # iputils prints the field as it is, wrapping to 0.
    result, lines = _ping_near_the_wrap(65530, 20)
    seqs = [int(m.group(1)) for m in map(re.compile(r"icmp_seq=(\d+) ").search, lines) if m]
    assert seqs == [65530 + i & 0xFFFF for i in range(20)]
    assert (result.transmitted, result.received, result.duplicates) == (20, 20, 0)
    assert not any("DUP" in line for line in lines)
    assert "20 packets transmitted, 20 received, 0% packet loss" in "\n".join(lines)


@pytest.mark.slow
def test_a_whole_cycle_of_sequence_numbers_reuses_them_cleanly(capsys):
    # 66,000 requests: numbers 1 ... 464 are used twice. No duplicate, no loss (was 78%
    # "loss" and thousands of duplicates with -c 300000).
    status, out, err = run(capsys, ["ping", "-c", "66000", "-i", "0.0002", "-W", "1"])
    assert status == 0
    m = SUMMARY.search(out)
    assert m.group(1, 2, 3) == ("66000", "66000", None), m.group(0)
    assert "DUP" not in out


def test_largest_payload_65507_works_and_65508_is_refused_like_iputils(capsys):
    status, out, err = run(capsys, ["ping", "-c", "1", "-s", "65507"])
    assert status == 0, err
    assert "65515 bytes from 198.18.0.2: icmp_seq=1 " in out          # 8 + 65507, one reply
    status, out, err = run(capsys, ["ping", "-c", "1", "-s", "65508"])
    assert status == 2 and out == ""
    assert err == ("wirestack ping: error: argument -s: the packet size must be between 0 and "
                   "65507, not 65508\n")


def test_arp_failure_prints_destination_host_unreachable_like_iputils(capsys):
    # Nobody has 198.18.0.9: ARP gives up after 3 tries (3 s); every request waiting for
    # it is reported "From <our address> ... Destination Host Unreachable" and counted as an
    # error, as Linux and iputils do.
    status, out, err = run(capsys, ["ping", "-c", "3", "-W", "4", "198.18.0.9"])
    assert status == 1
    for seq in (1, 2, 3):
        assert f"From 198.18.0.1 icmp_seq={seq} Destination Host Unreachable\n" in out
    m = SUMMARY.search(out)
    assert m.group(1, 2, 4, 5) == ("3", "0", "3", "100")


def test_ttl_option_sets_the_requests_ttl(capsys, tmp_path):
    pcap = tmp_path / "p.pcap"
    status, out, err = run(capsys, ["ping", "-c", "2", "-i", "0.1", "-t", "7", "--pcap", str(pcap)])
    assert status == 0
    requests = [f for f in (parse_frame(fr) for _, fr in PcapReader(str(pcap)))
                if f.icmp is not None and f.icmp.type == 8]
    assert [f.ip.ttl for f in requests] == [7, 7]


def test_ctrl_c_on_a_simulated_ping_prints_the_statistics():
    proc = subprocess.Popen(WIRESTACK + ["ping", "-c", "10000000", "-i", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("PING 198.18.0.2")
        assert "icmp_seq=1 " in proc.stdout.readline()       # lines arrive as they happen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == ""                                          # no traceback, no asyncio noise
    assert "--- 198.18.0.2 ping statistics ---" in out
    m = SUMMARY.search(out)
    assert m and int(m.group(1)) >= 1 and re.search(r"^rtt min/avg/max/mdev = ", out, re.M)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# "ignored": started as a non-interactive shell starts a background job (SIGINT ignored)
@pytest.mark.interop
@pytest.mark.parametrize("started", ["normally", "ignored"])
def test_ctrl_c_on_a_tap_ping_prints_the_statistics(netns, started):
    ns = netns("pingint")
    proc = subprocess.Popen(WIRESTACK + ["ping", "--tap", "wspi0", "--netns", ns.name,
                                         "--ip", "198.18.6.2/24", "--peer-ip", "198.18.6.1/24",
                                         "-c", "1000", "-i", "0.2", "198.18.6.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sigint if started == "ignored" else None)
    try:
        assert proc.stdout.readline().startswith("PING 198.18.6.1")
        assert "icmp_seq=1 " in proc.stdout.readline()
        assert "icmp_seq=2 " in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == ""
    assert "--- 198.18.6.1 ping statistics ---" in out
    m = SUMMARY.search(out)
    assert m and int(m.group(2)) >= 2
    links = subprocess.run(["ip", "-n", ns.name, "-o", "link"], capture_output=True, text=True).stdout
    assert "wspi0" not in links                               # removed on the way out
    assert os.path.exists(f"/run/netns/{ns.name}")            # the namespace was not ours


@pytest.mark.interop
def test_tap_ping_to_an_address_nobody_has_prints_host_unreachable(netns):
    ns = netns("pingnr")
    proc = subprocess.run(WIRESTACK + ["ping", "--tap", "wspn0", "--netns", ns.name, "--ip", "198.18.6.2/24",
                                       "--peer-ip", "198.18.6.1/24", "-c", "2", "-i", "0.5", "-W", "4",
                                       "198.18.6.77"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr == ""
    assert "From 198.18.6.2 icmp_seq=1 Destination Host Unreachable" in proc.stdout
    assert "2 packets transmitted, 0 received, +2 errors, 100% packet loss" in proc.stdout
