"""A wirestack router between two Linux namespaces, each joined to it by a TAP device:

    ns L: 198.18.1.2 --tapL-- 198.18.1.1 [wirestack router] 198.18.2.1 (MTU 1280) --tapR-- 198.18.2.2 :ns R

Linux ping crosses it, Linux traceroute and tracepath show it as the hop, curl fetches
10 MB across it from python3 -m http.server, and Linux's TCP learns the 1280-byte path MTU
from wirestack's fragmentation-needed. The test creates both namespaces and deletes them.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import interop_skip_reason, require_tools

pytestmark = pytest.mark.interop
_reason = interop_skip_reason()
if _reason:
    pytestmark = [pytest.mark.interop, pytest.mark.skip(reason=_reason)]

PID = os.getpid()
LEFT, RIGHT = f"ws-rl-{PID}", f"ws-rr-{PID}"
WIRESTACK = [sys.executable, "-m", "wirestack"]


@pytest.fixture(scope="module")
def router():
    from wirestack.phy.netns import Namespace
    with Namespace(LEFT) as left, Namespace(RIGHT) as right:
        proc = subprocess.Popen(
            WIRESTACK + ["router", "--tap", f"{LEFT}:tapL:198.18.1.1/24:198.18.1.2/24",
                         "--tap", f"{RIGHT}:tapR:198.18.2.1/24:198.18.2.2/24:1280"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                lines.append(line)
            assert line.strip() == "ready", (lines, proc.stderr.read())
            yield left, right
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_linux_ping_crosses_the_router(router):
    left, right = router
    out = left.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.2"]).stdout
    assert "3 received" in out and "ttl=63" in out   # one hop: the router took one off


def test_linux_traceroute_shows_the_router_as_hop_one(router):
    require_tools("traceroute")
    left, right = router
    for flags in ([], ["-I"]):
        out = left.run(["traceroute", "-n", "-w", "2", "-q", "3", *flags, "198.18.2.2"]).stdout
        hops = [line.split() for line in out.splitlines()[1:]]
        assert [h[:2] for h in hops] == [["1", "198.18.1.1"], ["2", "198.18.2.2"]], out
        assert all(h.count("ms") == 3 for h in hops), out


def test_linux_tracepath_shows_the_hop_and_the_path_mtu(router):
    require_tools("tracepath")
    left, right = router
    out = left.run(["tracepath", "-n", "198.18.2.2"]).stdout
    assert re.search(r"^ 1:\s+198\.18\.1\.1\s", out, re.M), out
    assert "pmtu 1280" in out and re.search(r"198\.18\.2\.2\s.*reached", out), out


def test_curl_downloads_10mb_across_and_linux_tcp_learns_the_path_mtu(router, tmp_path):
    require_tools("curl")
    left, right = router
    left.ip("route", "flush", "cache")
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    server = left.popen(["python3", "-m", "http.server", "8000", "--bind", "198.18.1.2"],
                        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if right.run(["curl", "-s", "-o", "/dev/null", "http://198.18.1.2:8000/"]).returncode == 0:
                break
            time.sleep(0.1)
        got = tmp_path / "got.bin"
        proc = right.run(["curl", "-s", "-S", "--max-time", "120", "-o", str(got),
                          "http://198.18.1.2:8000/big.bin"])
        assert proc.returncode == 0, proc.stderr
        assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        # The server's 1500-byte DF segments met the 1280-byte hop; wirestack's
        # fragmentation-needed taught Linux the path MTU (RFC 1191).
        route = left.run(["ip", "route", "get", "198.18.2.2"]).stdout
        assert "mtu 1280" in route, route
    finally:
        server.terminate()
        server.wait(10)
