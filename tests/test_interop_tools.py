"""`wirestack traceroute`, `arp` and `route` on a TAP device, with Linux as the router:

    wirestack 198.18.10.2 --TAP-- 198.18.10.1 [ns A, ip_forward=1] 198.18.11.1 --veth-- 198.18.11.2 [ns B]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import interop_skip_reason

pytestmark = pytest.mark.interop
_reason = interop_skip_reason()
if _reason:
    pytestmark = [pytest.mark.interop, pytest.mark.skip(reason=_reason)]

WIRESTACK = [sys.executable, "-m", "wirestack"]
MAC = "02:57:53:00:00:01"


@pytest.fixture
def linux_router(netns):
    a, b = netns("tra"), netns("trb")
    veth_a, veth_b = f"wsva{os.getpid() % 10000}", f"wsvb{os.getpid() % 10000}"
    a.ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b, "netns", b.name)
    a.ip("addr", "add", "198.18.11.1/24", "dev", veth_a)
    a.ip("link", "set", veth_a, "up")
    a.ip("link", "set", "lo", "up")
    b.ip("addr", "add", "198.18.11.2/24", "dev", veth_b)
    b.ip("link", "set", veth_b, "up")
    b.ip("route", "add", "default", "via", "198.18.11.1")
    a.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
    return ["--netns", a.name, "--tap", "wstr0", "--ip", "198.18.10.2/24", "--peer-ip", "198.18.10.1/24",
            "--gateway", "198.18.10.1", "--mac", MAC]


def _run(argv):
    return subprocess.run(WIRESTACK + argv, capture_output=True, text=True, timeout=120)


def test_wirestack_traceroute_through_a_linux_router(linux_router):
    for flags in ([], ["-I"]):
        proc = _run(["traceroute", *linux_router, "-n", "-w", "2", *flags, "198.18.11.2"])
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == "traceroute to 198.18.11.2 (198.18.11.2), 30 hops max, 60 byte packets"
        assert [line.split()[:2] for line in lines[1:]] == [["1", "198.18.10.1"], ["2", "198.18.11.2"]]
        assert all(line.count(" ms") == 3 for line in lines[1:]), proc.stdout


def test_wirestack_arp_and_route_on_a_tap(linux_router):
    proc = _run(["arp", *linux_router, "198.18.10.1"])
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r"198\.18\.10\.1 dev eth0 lladdr ((?:[0-9a-f]{2}:){5}[0-9a-f]{2}) REACHABLE\n", proc.stdout)
    assert m and m.group(1) != MAC, proc.stdout
    proc = _run(["arp", *linux_router, "198.18.10.77"])
    assert proc.returncode == 1 and proc.stdout == "198.18.10.77 dev eth0 FAILED\n"
    proc = _run(["route", *linux_router])
    assert proc.stdout.splitlines() == ["default via 198.18.10.1 dev eth0",
                                        "198.18.10.0/24 dev eth0 proto kernel scope link src 198.18.10.2"]
    proc = _run(["route", *linux_router, "get", "198.18.11.2"])
    assert proc.stdout == "198.18.11.2 via 198.18.10.1 dev eth0 src 198.18.10.2\n"
