"""A wirestack host on a TUN device (layer 3: bare IP datagrams, no Ethernet, no ARP):
Linux ping and curl reach it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from conftest import interop_skip_reason, require_tools

pytestmark = pytest.mark.interop
_reason = interop_skip_reason()
if _reason:
    pytestmark = [pytest.mark.interop, pytest.mark.skip(reason=_reason)]

WIRESTACK = [sys.executable, "-m", "wirestack"]


def test_ping_and_curl_reach_wirestack_on_a_tun_device(netns, tmp_path):
    require_tools("curl")
    ns = netns("tun")
    data = os.urandom(2 * 1024 * 1024)
    (tmp_path / "blob.bin").write_bytes(data)
    pcap = tmp_path / "tun.pcap"
    server = subprocess.Popen(WIRESTACK + ["serve", "--netns", ns.name, "--tun", "wstun0",
                                           "--ip", "198.18.12.2/24", "--peer-ip", "198.18.12.1/24",
                                           "--http", f"8080:{tmp_path}", "--pcap", str(pcap)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The start-up lines, `ready` last; a TUN device has no MAC, so the banner shows none.
        banner = [server.stdout.readline().strip()]
        while banner[-1] not in ("ready", ""):
            banner.append(server.stdout.readline().strip())
        assert banner[-1] == "ready", banner
        assert banner[0] == (f"wirestack 198.18.12.2/24 on TUN wstun0 in namespace {ns.name}, "
                             "kernel side 198.18.12.1/24")
        link = ns.run(["ip", "-d", "link", "show", "wstun0"]).stdout
        assert "link/none" in link and "tun" in link          # a layer-3 device: no MAC at all
        ping = ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.12.2"]).stdout
        assert "3 received" in ping and "ttl=64" in ping
        got = tmp_path / "got.bin"
        proc = ns.run(["curl", "-s", "-S", "--max-time", "60", "-o", str(got),
                       "http://198.18.12.2:8080/blob.bin"])
        assert proc.returncode == 0, proc.stderr
        assert hashlib.sha256(got.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert "lladdr" not in ns.run(["ip", "neigh", "show", "dev", "wstun0"]).stdout   # no ARP
    finally:
        server.terminate()
        server.communicate(timeout=10)
    # The capture is of bare IP datagrams (LINKTYPE_RAW): every one starts with version 4.
    from wirestack.trace.pcap import PcapReader
    frames = [f for _, f in PcapReader(pcap)]
    assert frames and all(f[0] >> 4 == 4 for f in frames)
