"""The real-time runtime's software offloads (runtime/realtime.py, ``gro=True, gso=True``):
two RealtimeHosts in this process joined by a pipe-backed wire, a transfer each way. The
wire carries only MTU-sized frames whose checksums a packet library accepts, the data
arrives intact, the taps see the wire's frames, and TCP handles far fewer segments than the
wire carried (super-segments sent, merged ones received). No root or TAP needed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections import deque

import pytest
from scapy.layers.inet import IP, TCP

from wirestack.iface import Host, HostConfig
from wirestack.runtime.realtime import RealtimeHost

A_IP, B_IP = "198.18.0.1", "198.18.0.2"


class PipeWire:
    """One end of a two-ended wire in this process: what ``send`` writes is queued at the
    other end, whose pipe becomes readable -- a device the runtime polls like a TAP."""

    offload = False

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.queue: deque[bytes] = deque()
        self.peer: PipeWire | None = None
        self.sent: list[bytes] = []
        self.batches: list[int] = []

    def fileno(self) -> int:
        return self.r

    def send(self, frame: bytes) -> bool:
        self.sent.append(bytes(frame))
        self.peer.queue.append(bytes(frame))
        os.write(self.peer.w, b"x")
        return True

    def read_frames(self, max_frames: int = 64) -> list[bytes]:
        try:
            os.read(self.r, 1 << 16)
        except BlockingIOError:
            pass
        out = []
        while self.queue and len(out) < max_frames:
            out.append(self.queue.popleft())
        if self.queue:
            os.write(self.w, b"x")      # more than a batch: stay readable
        self.batches.append(len(out))
        return out

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


class CsumPipeWire(PipeWire):
    """A PipeWire that offloads the checksums alone, as a TAP opened with ``offload=True,
    tso=False``: what ``write_partial`` takes leaves with its TCP checksum unfinished (its
    field holding the pseudo-header sum), and every frame read comes vouched for, as the
    kernel vouches for the segments it made itself."""

    offload = True
    csum_only = True

    def __init__(self):
        super().__init__()
        self.partial: list[bytes] = []

    def write_partial(self, pieces) -> int:
        for headers, payload in pieces:
            frame = headers + bytes(payload)
            self.partial.append(frame)
            self.send(frame)
        return len(pieces)

    def read_frames_offload(self, max_frames: int = 64) -> list[tuple[bytes, bool]]:
        return [(frame, True) for frame in self.read_frames(max_frames)]


def pair(loop, offloads: bool, wire=PipeWire):
    wa, wb = wire(), wire()
    wa.peer, wb.peer = wb, wa
    rts, seen = [], []
    for name, ip, wire, seed in (("a", A_IP, wa, 1), ("b", B_IP, wb, 2)):
        host = Host(name, rng=random.Random(seed), config=HostConfig(log_events=False))
        host.add_interface(bytes([2, 0, 0, 0, 0, seed]), f"{ip}/24")
        rt = RealtimeHost(host, wire, loop, taps=[lambda now, d, f: seen.append((d, f))],
                          gro=offloads, gso=offloads)
        rt.start()
        rts.append(rt)
    return rts, (wa, wb), seen


async def transfer(offloads: bool, size: int = 3_000_000, wire=PipeWire):
    loop = asyncio.get_running_loop()
    (a, b), wires, seen = pair(loop, offloads, wire)
    data = random.Random(5).randbytes(size)
    got = bytearray()

    async def sink(reader, writer):
        while chunk := await reader.read(1 << 16):
            got.extend(chunk)
        writer.write(hashlib.sha256(got).digest())   # then the other way: b -> a
        writer.write(data)
        await writer.drain()
        writer.close()

    server = await b.start_server(sink, B_IP, 9)
    reader, writer = await a.open_connection(B_IP, 9)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    echoed = await asyncio.wait_for(reader.read(-1), 60)
    writer.close()
    server.close()
    for rt in (a, b):
        rt.stop()
    for w in wires:
        w.close()
    return a, b, wires, seen, data, echoed


@pytest.mark.parametrize("offloads", [True, False])
def test_transfer_each_way_with_and_without_software_offloads(offloads):
    a, b, wires, seen, data, echoed = asyncio.run(transfer(offloads))
    assert echoed[:32] == hashlib.sha256(data).digest()        # a -> b intact
    assert hashlib.sha256(echoed[32:]).digest() == hashlib.sha256(data).digest()   # b -> a
    frames = wires[0].sent + wires[1].sent
    assert max(len(f) for f in frames) <= 1514                 # the wire: MTU-sized only
    assert all(len(f) <= 1514 for _, f in seen)                # and so are the taps
    assert len(seen) == 2 * len(frames)                        # each frame: tx once, rx once
    data_frames = [f for f in frames if len(f) > 100]
    for f in random.Random(1).sample(data_frames, 50):       # checksums a packet library accepts
        ip = IP(f[14:])
        want = (ip.chksum, ip[TCP].chksum)
        del ip.chksum, ip[TCP].chksum
        again = IP(bytes(ip))
        assert (again.chksum, again[TCP].chksum) == want
    segs_out = a.host.counters.get("tcp.out_segs") + b.host.counters.get("tcp.out_segs")
    segs_in = a.host.counters.get("tcp.in_segs") + b.host.counters.get("tcp.in_segs")
    tcp_frames = sum(1 for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6)
    if offloads:
        # Super-segments out, merged segments and thinned ACKs in: far fewer than frames.
        assert segs_out * 4 < tcp_frames and segs_in * 4 < tcp_frames
        assert a.gso[0].tso_frames > 1000 and b.gro[0].gro_merged > 1000
        assert a.acks_thinned > 0 and b.acks_thinned > 0
    else:
        assert segs_out == tcp_frames == segs_in
        assert a.gso == [None] and b.gro == [None] and a.acks_thinned == b.acks_thinned == 0


def scapy_accepts(frame: bytes) -> bool:
    """Both checksums of a TCP/IPv4 frame are what a packet library computes."""
    ip = IP(frame[14:])
    want = (ip.chksum, ip[TCP].chksum)
    del ip.chksum, ip[TCP].chksum
    again = IP(bytes(ip))
    return (again.chksum, again[TCP].chksum) == want


def test_transfer_each_way_over_devices_that_offload_only_the_checksums():
    a, b, wires, seen, data, echoed = asyncio.run(transfer(True, wire=CsumPipeWire))
    assert echoed[:32] == hashlib.sha256(data).digest()        # a -> b intact
    assert hashlib.sha256(echoed[32:]).digest() == hashlib.sha256(data).digest()   # b -> a
    frames = wires[0].sent + wires[1].sent
    assert max(len(f) for f in frames) <= 1514                 # still MTU-sized frames only
    # The cut pieces left unfinished (the device sums them), the rest finished by TCP ...
    partial = wires[0].partial + wires[1].partial
    assert len(partial) > 2000
    assert not any(scapy_accepts(f) for f in random.Random(2).sample(partial, 50))
    # ... and the taps saw every piece finished, as it goes on the wire.
    sent = [f for d, f in seen if d == "tx" and len(f) > 100]
    assert len(sent) >= len(partial)
    assert all(scapy_accepts(f) for f in random.Random(3).sample(sent, 50))
    # GRO merged and ACKs were thinned on the device's word for the checksums.
    tcp_frames = sum(1 for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6)
    segs_in = a.host.counters.get("tcp.in_segs") + b.host.counters.get("tcp.in_segs")
    assert segs_in * 4 < tcp_frames and b.gro[0].gro_merged > 1000
    assert a.acks_thinned > 0 and b.acks_thinned > 0
    assert a.host.counters.get("tcp.in_csum_errors", 0) == b.host.counters.get("tcp.in_csum_errors", 0) == 0


def test_tcp_hands_over_super_segments_only_to_what_cuts_them():
    # An offloading TAP cuts them itself (TSO); one that offloads only the checksums does
    # not, so without our GSO (serve --offload csum --no-gso) TCP makes MTU-sized segments.
    for wire_cls, gso, cut in ((PipeWire, False, False), (PipeWire, True, True),
                               (CsumPipeWire, False, False), (CsumPipeWire, True, True)):
        host = Host("h", rng=random.Random(1), config=HostConfig(log_events=False))
        host.add_interface(bytes([2, 0, 0, 0, 0, 7]), "198.18.0.7/24")
        wire = wire_cls()
        try:
            RealtimeHost(host, wire, asyncio.new_event_loop(), gso=gso)
            assert host.interfaces[0].tso is cut, (wire_cls.__name__, gso)
        finally:
            wire.close()
    tso_tap = CsumPipeWire()
    tso_tap.csum_only = False               # offload=True with TSO: the kernel cuts
    host = Host("h", rng=random.Random(1), config=HostConfig(log_events=False))
    host.add_interface(bytes([2, 0, 0, 0, 0, 7]), "198.18.0.7/24")
    try:
        RealtimeHost(host, tso_tap, asyncio.new_event_loop())
        assert host.interfaces[0].tso is True
    finally:
        tso_tap.close()


def test_gro_is_refused_on_a_host_that_forwards():
    host = Host("r", rng=random.Random(1), config=HostConfig(log_events=False, forwarding=True))
    host.add_interface(bytes([2, 0, 0, 0, 0, 9]), "198.18.0.9/24")
    wire = PipeWire()
    try:
        with pytest.raises(ValueError, match="forwards"):
            RealtimeHost(host, wire, asyncio.new_event_loop(), gro=True)
        RealtimeHost(host, wire, asyncio.new_event_loop(), gso=True)     # GSO is fine
    finally:
        wire.close()
