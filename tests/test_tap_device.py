"""The TAP device against the real Linux kernel, inside a throw-away namespace.

The kernel side gets 198.18.0.1/24; we ping 198.18.0.2 (nobody) from inside the
namespace.  The kernel must first resolve 198.18.0.2 with ARP (RFC 826), so the
very frame we expect on the TAP fd is a broadcast ARP request for that address.
We answer nothing.
"""

import os
import select
import struct
import subprocess
import time

import pytest

from conftest import require_tools

pytestmark = pytest.mark.interop


def _arp_target(frame: bytes):
    """Decode by hand: Ethernet II header, then the RFC 826 ARP body for IPv4."""
    if len(frame) < 14 + 28:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype != 0x0806:
        return None
    htype, ptype, hlen, plen, oper = struct.unpack_from("!HHBBH", frame, 14)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        return None
    sender_ip = frame[14 + 14:14 + 18]
    target_ip = frame[14 + 24:14 + 28]
    return oper, frame[0:6], sender_ip, target_ip


def test_kernel_arp_request_reaches_tap(netns):
    require_tools("ping")
    from wirestack.phy.tap import TapDevice

    ns = netns("test")
    tap = TapDevice("ws0", netns=ns.name)
    try:
        # Born in the namespace, not in the root one.
        assert subprocess.run(["ip", "link", "show", "dev", tap.name],
                              capture_output=True).returncode != 0
        assert ns.run(["ip", "link", "show", "dev", tap.name]).returncode == 0

        tap.configure_peer("198.18.0.1/24")
        assert tap.read_frames(16) is not None  # drain anything from link-up
        ping = ns.popen(["ping", "-c", "1", "-W", "1", "198.18.0.2"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            found = None
            deadline = time.monotonic() + 3.0
            while found is None and time.monotonic() < deadline:
                select.select([tap.fileno()], [], [], 0.2)
                for frame in tap.read_frames(32):
                    arp = _arp_target(frame)
                    if arp and arp[0] == 1 and arp[3] == bytes([198, 18, 0, 2]):
                        found = arp
            assert found is not None, "no ARP request for 198.18.0.2 arrived on the TAP fd"
            oper, dst_mac, sender_ip, _ = found
            assert dst_mac == b"\xff" * 6          # requests are broadcast
            assert sender_ip == bytes([198, 18, 0, 1])
        finally:
            ping.wait(timeout=5)
        assert ping.returncode != 0  # nobody answered, as intended
    finally:
        tap.close()
    # A non-persistent TAP disappears with its fd.
    for _ in range(50):
        if ns.run(["ip", "link", "show", "dev", "ws0"]).returncode != 0:
            break
        time.sleep(0.02)
    assert ns.run(["ip", "link", "show", "dev", "ws0"]).returncode != 0


def test_tap_nonblocking_empty_read(netns):
    from wirestack.phy.tap import TapDevice

    ns = netns("test")
    with TapDevice("ws1", netns=ns.name) as tap:
        assert os.get_blocking(tap.fileno()) is False
        assert tap.read_frames(8) == []   # interface down: nothing queued, no block
        assert tap.read_frame() is None


def test_netns_enter_is_thread_local_and_restores(netns):
    from wirestack.phy import netns as nsmod

    before = os.readlink("/proc/thread-self/ns/net")
    ns = netns("test")
    with nsmod.enter(ns.name):
        inside = os.readlink("/proc/thread-self/ns/net")
        assert inside != before
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_tap_errors_are_one_sentence(netns):
    from wirestack.phy.tap import TapDevice, TapError

    with pytest.raises(TapError, match="does not exist"):
        TapDevice("ws0", netns="ws-no-such-namespace-xyz")
    with pytest.raises(TapError, match="invalid interface name"):
        TapDevice("x" * 20, netns=None)
