"""How the real-time runtime reads a wake-up's frames (runtime/realtime.py): a frame that
waits on an answer and that GRO would never merge -- a SYN, a request's last (PSH) segment,
ARP, an ICMP echo -- is answered before the read that finds the queue empty (a SYN's answer
even before its child's TCB); other TCP segments are read as one batch before anything is
written.  The same holds for a device with offloads, which hands out (frame, checksum_ok)
pairs.  A scripted device logs reads and writes in order; frames are made and checked with
scapy.  No root or TAP needed."""

from __future__ import annotations

import asyncio
import os
import random
from collections import deque

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from wirestack.iface import Host, HostConfig
from wirestack.runtime.realtime import RealtimeHost, answer_first, syns_first

SERVER_MAC, CLIENT_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"
SERVER_IP, CLIENT_IP = "198.18.0.2", "198.18.0.1"


class ScriptedDevice:
    """Hands out queued frames and logs every read (how many it asked, how many it got)
    and every write, in order.  With ``offload`` it reads as a TAP with virtio-net
    offloads does: (frame, checksum_ok) pairs, from ``read_frames_offload``."""

    def __init__(self, offload: bool = False) -> None:
        self.offload = offload
        self.checksum_ok = False     # what read_frames_offload says of every frame
        self.r, self.w = os.pipe()
        self.queue: deque[bytes] = deque()
        self.log: list[tuple] = []
        self.on_write = lambda: None     # what else to note with each write
        self.fail_writes = False

    def fileno(self) -> int:
        return self.r

    def read_frames(self, max_frames: int = 64) -> list[bytes]:
        assert not self.offload, "an offloading device is read with read_frames_offload"
        out = [self.queue.popleft() for _ in range(min(max_frames, len(self.queue)))]
        self.log.append(("read", max_frames, len(out)))
        return out

    def read_frames_offload(self, max_frames: int = 64) -> list[tuple[bytes, bool]]:
        assert self.offload
        out = [(self.queue.popleft(), self.checksum_ok)
               for _ in range(min(max_frames, len(self.queue)))]
        self.log.append(("read", max_frames, len(out)))
        return out

    def send(self, frame: bytes) -> bool:
        if self.fail_writes:
            raise OSError(5, "Input/output error")     # what a TAP whose link is gone says
        self.log.append(("write", Ether(bytes(frame)), self.on_write()))
        return True

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


@pytest.fixture(params=["plain", "offload"])
def server(request):
    # The same order of reads and writes whether the device offloads or not.
    loop = asyncio.new_event_loop()
    host = Host("server", rng=random.Random(1), config=HostConfig(log_events=False))
    host.add_interface(bytes.fromhex(SERVER_MAC.replace(":", "")), f"{SERVER_IP}/24")
    dev = ScriptedDevice(offload=request.param == "offload")
    rt = RealtimeHost(host, dev, loop, gro=True, gso=True)
    rt.start()
    rt.driver.service()      # what start() queued (the address's ARP announcement) leaves
    yield host, rt, dev
    rt.stop()
    dev.close()
    loop.close()


def wake(rt: RealtimeHost, dev: ScriptedDevice, *frames) -> list[tuple]:
    dev.queue.extend(bytes(f) for f in frames)
    dev.log.clear()
    rt._on_readable(0)
    return dev.log


def to_server(l4):
    return Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT_IP, dst=SERVER_IP) / l4


def arp_request():
    return Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=CLIENT_MAC, psrc=CLIENT_IP, pdst=SERVER_IP)


def kinds(log):
    return [e[0] if e[0] == "write" else f"read {e[1]}->{e[2]}" for e in log]


def listen_on_discard(host, rt, dev) -> None:
    """A listener on port 9, and the client's ARP request answered (so that later answers
    need no ARP of their own)."""
    lst = host.tcp_socket()
    lst.bind((SERVER_IP, 9))
    lst.listen(8)
    wake(rt, dev, arp_request())


def swap_read(dev, make) -> None:
    """Replace the device's read of its kind (plain or offload) with make(that read)."""
    name = "read_frames_offload" if dev.offload else "read_frames"
    setattr(dev, name, make(getattr(dev, name)))


def test_a_syn_is_answered_before_the_read_that_finds_the_queue_empty(server):
    host, rt, dev = server
    log = wake(rt, dev, arp_request())
    assert kinds(log) == ["read 1->1", "write", "read 63->0"]
    assert log[1][1][ARP].op == 2 and log[1][1][ARP].pdst == CLIENT_IP      # the ARP reply
    listen_on_discard(host, rt, dev)
    syn = to_server(TCP(sport=40000, dport=9, flags="S", seq=1000, window=64240,
                        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (7, 0)),
                                 ("NOP", None), ("WScale", 7)]))
    dev.on_write = lambda: [c.state for c in host.tcp.connections()]
    log = wake(rt, dev, syn)
    assert kinds(log) == ["read 1->1", "write", "read 63->0"]
    synack = log[1][1]
    assert synack[TCP].flags == "SA" and synack[TCP].ack == 1001 and synack[TCP].dport == 40000
    assert log[1][2] == []     # written before the listener made the child (push_output)
    assert [c.state for c in host.tcp.connections()] == ["SYN_RECEIVED"]
    ping = to_server(ICMP(type=8, id=1, seq=1) / b"hello")
    log = wake(rt, dev, ping)
    assert kinds(log) == ["read 1->1", "write", "read 63->0"]
    assert log[1][1][ICMP].type == 0 and log[1][1][Raw].load == b"hello"


def test_a_request_is_answered_before_the_read_that_finds_the_queue_empty(server):
    host, rt, dev = server
    wake(rt, dev, arp_request())
    # Echo's protocol answers inside the host's poll: the reply is the request's answer.
    from wirestack.apps import services
    asyncio.set_event_loop(rt.loop)
    server = rt.loop.run_until_complete(rt.create_server(services.EchoProtocol, SERVER_IP, 7))
    syn = to_server(TCP(sport=40010, dport=7, flags="S", seq=100))
    synack = wake(rt, dev, syn)[1][1]
    wake(rt, dev, to_server(TCP(sport=40010, dport=7, flags="A", seq=101, ack=synack.seq + 1)))
    log = wake(rt, dev, to_server(TCP(sport=40010, dport=7, flags="PA", seq=101,
                                      ack=synack.seq + 1) / b"ping"))
    assert kinds(log) == ["read 1->1", "write", "read 63->0"]
    assert log[1][1][Raw].load == b"ping"                        # the echo, before the read
    server.close()


def test_tcp_segments_without_syn_are_read_as_one_batch_before_any_answer(server):
    host, rt, dev = server
    wake(rt, dev, arp_request())
    # Two segments for no connection: each gets a reset (RFC 9293 §3.10.7.1), but only
    # after the whole batch was read -- the answers of a batch leave together.
    segs = [to_server(TCP(sport=40001 + i, dport=9, flags="A", seq=5, ack=9)) for i in range(2)]
    log = wake(rt, dev, *segs)
    assert kinds(log) == ["read 1->1", "read 63->1", "write", "write"]
    assert [e[1][TCP].flags for e in log[2:]] == ["R", "R"]
    assert host.counters["tcp.in_no_socket"] == 2


def test_a_syn_behind_other_connections_segments_is_answered_first(server):
    # The client's FIN/ACK of its last connection and the SYN of its next one, read in one
    # wake-up: the SYN,ACK leaves first (the client's connect() waits on it), then the rest.
    host, rt, dev = server
    listen_on_discard(host, rt, dev)
    old = to_server(TCP(sport=40030, dport=9, flags="FA", seq=5, ack=9))   # no such connection
    syn = to_server(TCP(sport=40031, dport=9, flags="S", seq=77))
    log = wake(rt, dev, old, syn)
    assert kinds(log) == ["read 1->1", "read 63->1", "write", "write"]
    assert [(e[1][TCP].flags, e[1][TCP].dport) for e in log[2:]] == [("SA", 40031), ("R", 40030)]


def test_a_syn_keeps_its_place_behind_its_own_flow_or_anything_not_tcp(server):
    host, rt, dev = server
    listen_on_discard(host, rt, dev)
    # The same 4-tuple: the segment before the SYN is answered first (order within a flow).
    same = to_server(TCP(sport=40032, dport=9, flags="A", seq=5, ack=9))
    syn = to_server(TCP(sport=40032, dport=9, flags="S", seq=77))
    log = wake(rt, dev, same, syn)
    assert [e[1][TCP].flags for e in log if e[0] == "write"] == ["R", "SA"]
    # An ICMP echo in the batch: nothing moves.
    ping = to_server(ICMP(type=8, id=4, seq=1))
    other = to_server(TCP(sport=40033, dport=9, flags="A", seq=5, ack=9))
    syn2 = to_server(TCP(sport=40034, dport=9, flags="S", seq=78))
    log = wake(rt, dev, other, ping, syn2)
    writes = [e[1] for e in log if e[0] == "write"]
    assert [ICMP in w or w[TCP].flags for w in writes] == ["R", True, "SA"]


def test_syns_first_moves_only_new_connections_syns():
    a = bytes(to_server(TCP(sport=1, dport=9, flags="FA")))
    b = bytes(to_server(TCP(sport=2, dport=9, flags="S")))
    c = bytes(to_server(TCP(sport=3, dport=9, flags="SA")))     # a SYN,ACK: not a request
    d = bytes(to_server(TCP(sport=4, dport=9, flags="S")))
    assert syns_first([a, b, c, d], layer3=False) == [b, d, a, c]
    assert syns_first([a, c], layer3=False) == [a, c]
    acks = [bytes(to_server(TCP(sport=5, dport=9, flags="A") / b"data")), a]
    assert syns_first(acks, layer3=False) is acks                # no SYN: nothing to do
    pairs = [(a, True), (b, False)]
    assert syns_first(pairs, layer3=False, pairs=True) == [(b, False), (a, True)]
    ip_only = [x[14:] for x in (a, b)]
    assert syns_first(ip_only, layer3=True) == ip_only[::-1]
    short = a[:30]                                              # too short to tell
    assert syns_first([short, b], layer3=False) == [short, b]


@pytest.mark.parametrize("frame, first", [
    (to_server(TCP(flags="S")), True),
    (to_server(TCP(flags="SA")), True),
    (to_server(TCP(flags="A")), False),
    (to_server(TCP(flags="PA") / b"data"), True),        # a request's last segment
    (to_server(TCP(flags="A") / b"data"), False),         # bulk data: merged with the rest
    (to_server(TCP(flags="PA")), False),                 # PSH without data: an ACK
    (to_server(TCP(flags="PA", options=[("Timestamp", (1, 2))]) / b"x"), True),
    (to_server(TCP(flags="FA")), False),
    (to_server(ICMP()), True),
    (arp_request(), True),
    (bytes(to_server(TCP(flags="S")))[:30], True),       # too short to tell: IP counts it
])
def test_which_frames_are_answered_first(frame, first):
    assert answer_first(bytes(frame), layer3=False) is first
    if isinstance(frame, Ether) and IP in frame:
        assert answer_first(bytes(frame[IP]), layer3=True) is first


def test_a_failed_write_of_the_answer_is_raised_and_the_host_reads_on(server):
    host, rt, dev = server
    listen_on_discard(host, rt, dev)
    dev.fail_writes = True
    syn = to_server(TCP(sport=40002, dport=9, flags="S", seq=7))
    dev.queue.append(bytes(syn))
    dev.queue.append(bytes(to_server(TCP(sport=40003, dport=9, flags="S", seq=9))))
    with pytest.raises(OSError, match="Input/output"):
        rt._on_readable(0)       # the first SYN's answer could not be written: reported ...
    assert rt.device_error is None and rt._started          # ... but only reads stop a host
    # The host took the SYN whole (its child waits to send the SYN,ACK again); the second
    # SYN is still queued for the next wake-up.
    assert [c.rport for c in host.tcp.connections()] == [40002]
    assert len(dev.queue) == 1


def test_a_failed_read_after_the_answer_stops_the_host(server):
    host, rt, dev = server
    wake(rt, dev, arp_request())

    def gone_after_one(reads):
        def read(n):
            if n == 1:
                return reads(n)
            raise OSError(77, "File descriptor in bad state")
        return read
    swap_read(dev, gone_after_one)
    wake(rt, dev, to_server(ICMP(type=8, id=2, seq=1)))
    assert [e[0] for e in dev.log] == ["read", "write"]       # the echo was answered first
    assert rt.device_error is not None and not rt._started


def test_a_device_that_hands_out_more_than_asked_gets_it_all_handled_as_a_batch(server):
    # A stream device decodes whatever one recv() brought: asked for one frame it may
    # return three.  None may be lost to the answer-first path, which takes one frame.
    host, rt, dev = server
    wake(rt, dev, arp_request())
    swap_read(dev, lambda reads: lambda n: reads(len(dev.queue)))
    log = wake(rt, dev, *[to_server(ICMP(type=8, id=3, seq=i) / b"x") for i in range(3)])
    assert [e[1][ICMP].seq for e in log if e[0] == "write"] == [0, 1, 2]


def test_the_checksum_a_device_with_offloads_vouches_for_is_not_checked_again(server):
    # checksum_ok (the kernel's NEEDS_CSUM / DATA_VALID) reaches TCP with the answered-first
    # frame too: a SYN whose TCP checksum field is wrong is answered when the device vouches
    # for it and dropped, and counted, when nobody does.
    host, rt, dev = server
    listen_on_discard(host, rt, dev)
    dev.checksum_ok = True
    log = wake(rt, dev, to_server(TCP(sport=40020, dport=9, flags="S", seq=5, chksum=0x1234)))
    if dev.offload:
        assert [e[1][TCP].flags for e in log if e[0] == "write"] == ["SA"]
        assert host.counters["tcp.in_csum_errors"] == 0
    else:
        assert [e for e in log if e[0] == "write"] == []
        assert host.counters["tcp.in_csum_errors"] == 1


@pytest.mark.parametrize("offload", [False, True])
def test_a_forwarding_host_reads_everything_as_a_batch(offload):
    loop = asyncio.new_event_loop()
    host = Host("router", rng=random.Random(1),
                config=HostConfig(log_events=False, forwarding=True))
    host.add_interface(bytes.fromhex(SERVER_MAC.replace(":", "")), f"{SERVER_IP}/24")
    dev = ScriptedDevice(offload=offload)
    rt = RealtimeHost(host, dev, loop)
    rt.start()
    rt.driver.service()
    try:
        log = wake(rt, dev, arp_request())
        assert kinds(log) == ["read 1->1", "read 63->0", "write"]
    finally:
        rt.stop()
        dev.close()
        loop.close()
