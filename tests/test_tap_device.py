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


def test_netns_enter_starts_no_process(netns, monkeypatch):
    """A client that makes one socket per connection enters the namespace each time: the
    switch is two system calls, not a child process (find_library runs ldconfig -p)."""
    import subprocess

    from wirestack.phy import netns as nsmod

    ns = netns("test")
    with nsmod.enter(ns.name):       # the C library may be looked up once, here
        pass
    started = []
    real_init = subprocess.Popen.__init__

    def counting_init(self, *args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(subprocess.Popen, "__init__", counting_init)
    before = os.readlink("/proc/thread-self/ns/net")
    for _ in range(3):
        with nsmod.enter(ns.name):
            assert os.readlink("/proc/thread-self/ns/net") != before
    assert started == []
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_tap_errors_are_one_sentence(netns):
    from wirestack.phy.tap import TapDevice, TapError

    with pytest.raises(TapError, match="does not exist"):
        TapDevice("ws0", netns="ws-no-such-namespace-xyz")
    with pytest.raises(TapError, match="invalid interface name"):
        TapDevice("x" * 20, netns=None)


def test_write_many_counts_what_went_out_before_the_device_failed(monkeypatch):
    """A TapError part way through write_many (the device is gone) still leaves tx_frames
    counting the frames written before it, as write() does frame by frame."""
    import errno as errno_
    import os as os_
    from wirestack.phy.tap import TapDevice, TapError

    dev = TapDevice.__new__(TapDevice)          # no /dev/net/tun needed: the fd is never used
    dev.fd, dev.offload, dev.name = 99, False, "ws0"
    dev.tx_frames = dev.tx_dropped = 0
    calls = []

    def fake_write(fd, frame):
        calls.append(frame)
        if len(calls) == 3:
            raise OSError(errno_.EIO, "Input/output error")
        return len(frame)

    monkeypatch.setattr(os_, "write", fake_write)
    with pytest.raises(TapError):
        dev.write_many([b"a" * 60, b"b" * 60, b"c" * 60, b"d" * 60])
    assert dev.tx_frames == 2 and len(calls) == 3
    dev.fd = -1                                 # nothing to close


def test_frame_written_to_tap_reaches_kernel(netns):
    """write(): an ARP request we inject is answered by the kernel (RFC 826)."""
    from wirestack.phy.tap import TapDevice

    ns = netns("test")
    with TapDevice("ws0", netns=ns.name) as tap:
        tap.configure_peer("198.18.0.1/24")
        kernel_mac = tap.kernel_mac()
        our_mac = bytes.fromhex("020000000002")
        our_ip, kernel_ip = bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1])
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + our_mac + our_ip + b"\0" * 6 + kernel_ip
        frame = b"\xff" * 6 + our_mac + struct.pack("!H", 0x0806) + arp
        tap.read_frames(64)
        assert tap.write(frame)
        reply = None
        deadline = time.monotonic() + 3.0
        while reply is None and time.monotonic() < deadline:
            select.select([tap.fileno()], [], [], 0.2)
            for f in tap.read_frames(32):
                a = _arp_target(f)
                if a and a[0] == 2 and a[3] == our_ip:
                    reply = f
        assert reply is not None, "the kernel did not answer our ARP request"
        assert reply[0:6] == our_mac and reply[6:12] == kernel_mac
        assert reply[14 + 8:14 + 14] == kernel_mac          # sender hardware address
        assert tap.tx_frames == 1 and tap.tx_dropped == 0


def test_write_many_hands_each_frame_over_and_counts_the_refused(netns):
    """write_many(): three ARP requests in one call, one of them too short for the kernel
    (EINVAL: counted as a drop, the others still go): the kernel answers two."""
    from wirestack.phy.tap import TapDevice

    ns = netns("test")
    with TapDevice("ws0", netns=ns.name) as tap:
        tap.configure_peer("198.18.0.1/24")
        our_mac = bytes.fromhex("020000000002")
        kernel_ip = bytes([198, 18, 0, 1])
        frames = []
        for host in (2, 3):
            ip = bytes([198, 18, 0, host])
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + our_mac + ip + b"\0" * 6 + kernel_ip
            frames.append(b"\xff" * 6 + our_mac + struct.pack("!H", 0x0806) + arp)
        tap.read_frames(64)
        assert tap.write_many([frames[0], b"\x01" * 4, frames[1]]) == 2
        assert tap.tx_frames == 2 and tap.tx_dropped == 1
        asked = set()
        deadline = time.monotonic() + 3.0
        while len(asked) < 2 and time.monotonic() < deadline:
            select.select([tap.fileno()], [], [], 0.2)
            for f in tap.read_frames(32):
                a = _arp_target(f)
                if a and a[0] == 2:
                    asked.add(a[3])
        assert asked == {bytes([198, 18, 0, 2]), bytes([198, 18, 0, 3])}


def test_jumbo_frame_read_whole_after_mtu_change(netns):
    """configure_peer(mtu=...) grows the read buffer: a 9000-byte frame is not cut short,
    and with offloads off the kernel sends it as one frame with a full IPv4 header."""
    require_tools("ping")
    from wirestack.phy.tap import TapDevice

    ns = netns("test")
    with TapDevice("ws0", netns=ns.name) as tap:
        tap.configure_peer("198.18.0.1/24", mtu=9000)
        # A static neighbour entry: the kernel sends the echo request without ARP.
        ns.ip("neigh", "add", "198.18.0.2", "lladdr", "02:00:00:00:00:02", "dev", "ws0")
        tap.read_frames(64)
        ns.run(["ping", "-c", "1", "-W", "1", "-s", "8000", "-M", "do", "198.18.0.2"])
        frames = []
        deadline = time.monotonic() + 3.0
        while not frames and time.monotonic() < deadline:
            select.select([tap.fileno()], [], [], 0.2)
            frames = [f for f in tap.read_frames(32) if f[12:14] == b"\x08\x00"]
        assert frames, "no IPv4 frame arrived"
        f = frames[0]
        total_len = struct.unpack_from("!H", f, 14 + 2)[0]
        assert total_len == 8000 + 8 + 20            # ICMP payload + ICMP header + IPv4 header
        assert len(f) == 14 + total_len             # the whole frame, nothing truncated
        assert f[14 + 9] == 1                        # protocol ICMP


def _l4_checksum_ok(frame: bytes) -> bool:
    """Independent RFC 1071 check of an IPv4 UDP/TCP frame's transport checksum (a word
    loop, not the stack's big-integer shortcut)."""
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    l4 = frame[14 + ihl:14 + total]
    data = frame[26:34] + bytes([0, frame[23]]) + len(l4).to_bytes(2, "big") + l4
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def test_offload_device_completes_udp_and_vouches_for_tcp(netns):
    """TapDevice(offload=True): the kernel leaves TCP/UDP checksums to the device
    (NEEDS_CSUM).  A UDP datagram comes out with its checksum filled in and correct; a TCP
    segment comes out as the kernel made it, flagged checksum_ok."""
    import socket

    from wirestack.phy import netns as netns_mod
    from wirestack.phy.tap import TapDevice

    ns = netns("offl")
    with TapDevice("ws0", netns=ns.name, offload=True) as tap:
        tap.configure_peer("198.18.0.1/24")
        # A static neighbour: the kernel sends at once instead of asking with ARP.
        assert ns.run(["ip", "neigh", "add", "198.18.0.2", "lladdr", "02:00:00:00:00:02",
                       "dev", "ws0"]).returncode == 0
        time.sleep(0.1)
        tap.read_frames_offload(64)   # whatever link-up produced
        with netns_mod.enter(ns.name):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setblocking(False)
        try:
            u.sendto(b"offload" * 100, ("198.18.0.2", 9))
            try:
                t.connect(("198.18.0.2", 9))
            except BlockingIOError:
                pass
            got = {}
            deadline = time.monotonic() + 3.0
            while len(got) < 2 and time.monotonic() < deadline:
                select.select([tap.fileno()], [], [], 0.2)
                for frame, ok in tap.read_frames_offload(32):
                    if frame[12:14] == b"\x08\x00" and frame[23] in (6, 17):
                        got.setdefault(frame[23], (frame, ok))
        finally:
            u.close()
            t.close()
    assert set(got) == {6, 17}, f"expected a UDP datagram and a TCP SYN, got {sorted(got)}"
    udp, udp_ok = got[17]
    assert not udp_ok and _l4_checksum_ok(udp), "UDP checksum not completed correctly"
    syn, syn_ok = got[6]
    assert syn[14 + 20 + 13] & 0x02, "not a SYN"
    assert syn_ok, "the kernel's TCP segment was not flagged checksum_ok"
