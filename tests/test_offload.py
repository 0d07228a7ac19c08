"""The batch and offload switches of the TCP layer, sans-I/O: stretch ACKs per batch
(``tcp.defer_output``), the checksum a device vouches for (``checksum_ok``), and TSO
super-segments (``tcp.gso_max`` + ``iface.tso``) cut by a segmenter written here the way
the kernel's GSO does it, so the bytes that reach the peer are checked end to end."""

import hashlib
import random
import struct

from wirestack.iface import Host, HostConfig

A_MAC, B_MAC = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\0\x02"
A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def _sum16(data: bytes) -> int:
    """RFC 1071 ones'-complement sum, word by word (independent of the stack's shortcut)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pseudo(ip: bytes, tcp_len: int) -> bytes:
    return ip[12:20] + b"\0\x06" + tcp_len.to_bytes(2, "big")


def gso_cut(frame: bytes, mtu: int = 1500) -> list[bytes]:
    """What the kernel does with a GSO_TCPV4 + NEEDS_CSUM frame: the payload in pieces of
    (MTU - IP - TCP header) bytes, each with a copy of the headers, its own sequence number,
    IP length, ident and checksums; PSH/FIN only on the last piece, CWR only on the first
    (Linux's tcp_gso_segment clears it after the first).  Also checks that the
    super-segment's checksum field holds the pseudo-header sum, as the kernel expects."""
    eth, ip = frame[:14], frame[14:34]
    thl = (frame[34 + 12] >> 4) * 4
    tcp = bytearray(frame[34:34 + thl])
    payload = frame[34 + thl:]
    field = int.from_bytes(tcp[16:18], "big")
    assert field == _sum16(_pseudo(ip, thl + len(payload))), "checksum field is not the pseudo sum"
    size = mtu - 20 - thl
    seq = int.from_bytes(tcp[4:8], "big")
    flags = tcp[13]
    ident = int.from_bytes(ip[4:6], "big")
    out = []
    for i, off in enumerate(range(0, len(payload), size)):
        piece = payload[off:off + size]
        last = off + size >= len(payload)
        h = bytearray(tcp)
        h[4:8] = ((seq + off) & 0xFFFFFFFF).to_bytes(4, "big")
        h[13] = flags if last else flags & ~0x09          # PSH and FIN only at the end
        if i:
            h[13] &= ~0x80                                # CWR only on the first
        h[16:18] = b"\0\0"
        c = 0xFFFF - _sum16(_pseudo(ip, thl + len(piece)) + bytes(h) + piece)
        h[16:18] = c.to_bytes(2, "big")
        iph = bytearray(ip)
        iph[2:4] = (20 + thl + len(piece)).to_bytes(2, "big")
        iph[4:6] = ((ident + i) & 0xFFFF).to_bytes(2, "big")
        iph[10:12] = b"\0\0"
        iph[10:12] = (0xFFFF - _sum16(bytes(iph))).to_bytes(2, "big")
        out.append(eth + bytes(iph) + bytes(h) + piece)
    return out


def make_pair():
    a = Host("a", rng=random.Random(1), config=HostConfig(log_events=False))
    b = Host("b", rng=random.Random(2), config=HostConfig(log_events=False))
    a.add_interface(A_MAC, A_IP + "/24")
    b.add_interface(B_MAC, B_IP + "/24")
    return a, b


def run_transfer(a, b, data: bytes, cut=None):
    """a sends DATA to b; frames from a larger than a 1514-byte frame go through CUT.
    Everything queued for a host is received before it transmits (a batch, as the
    real-time runtime does).  Returns (bytes b received, frames a sent)."""
    ls = b.tcp_socket()
    ls.bind(("0.0.0.0", 9))
    ls.listen()
    c = a.tcp_socket()
    c.connect((B_IP, 9))
    srv, got, sent, now, to_b, to_a, a_frames = None, bytearray(), 0, 0, [], [], []
    for _ in range(200_000):
        now += 20_000
        if sent < len(data) and c.state == "ESTABLISHED":
            sent += c.send(data[sent:sent + 65536])
            if sent == len(data):
                c.shutdown_write()
        for f in to_a:
            a.receive(f, now, 0)
        to_a = []
        for _, f in a.transmit(now):
            a_frames.append(f)
            to_b.extend(cut(f) if cut is not None and len(f) > 1514 else [f])
        for f in to_b:
            b.receive(f, now, 0)
        to_b = []
        if srv is None:
            srv = ls.accept()
        if srv is not None:
            while srv.readable:
                got += srv.recv(1 << 20)
            if srv.state == "CLOSE_WAIT":
                srv.close()
        to_a.extend(f for _, f in b.transmit(now))
        if srv is not None and srv.state in ("CLOSED", "LAST_ACK") and len(got) == len(data):
            break
    return bytes(got), a_frames


def test_tso_super_segments_cut_like_gso_arrive_intact():
    a, b = make_pair()
    a.tcp.gso_max = 0xFFFF - 52
    a.interfaces[0].tso = True
    data = random.Random(7).randbytes(2_000_000)
    got, frames = run_transfer(a, b, data, cut=gso_cut)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    big = [f for f in frames if len(f) > 1514]
    assert big, "no super-segment was sent"
    assert max(len(f) for f in big) <= 14 + 0xFFFF
    # Every super-segment is a whole number of MSS-sized pieces.
    assert all((len(f) - 14 - 20 - 32) % 1448 == 0 for f in big)
    assert b.counters.get("tcp.in_csum_errors", 0) == 0
    assert a.counters.get("ip.frag_creates", 0) == 0


def test_without_tso_no_frame_exceeds_the_mtu():
    a, b = make_pair()
    data = random.Random(8).randbytes(300_000)
    got, frames = run_transfer(a, b, data)
    assert got == data
    assert max(len(f) for f in frames) <= 1514


def test_checksum_ok_skips_the_tcp_sum_and_only_then():
    a, b = make_pair()
    ls = b.tcp_socket()
    ls.bind(("0.0.0.0", 9))
    ls.listen()
    c = a.tcp_socket()
    c.connect((B_IP, 9))
    syn = None
    for _ in range(10):                       # ARP first; keep the SYN, deliver the rest
        for _, f in a.transmit(0):
            if f[12:14] == b"\x08\x00" and f[23] == 6 and f[47] & 0x02:
                syn = syn or f
            else:
                b.receive(f, 0, 0)
        for _, f in b.transmit(0):
            a.receive(f, 0, 0)
        if syn:
            break
    assert syn
    bad = bytearray(syn)
    bad[34 + 16] ^= 0x5A                      # corrupt the TCP checksum
    b.receive(bytes(bad), 1000, 0)
    assert b.counters.get("tcp.in_csum_errors", 0) == 1
    assert b.tcp.connection_count() == 0
    b.receive(bytes(bad), 2000, 0, checksum_ok=True)   # the device vouches: taken
    assert b.counters.get("tcp.in_csum_errors", 0) == 1
    assert b.tcp.connection_count() == 1


def test_defer_output_acks_a_batch_once():
    a, b = make_pair()
    b.tcp.defer_output = True
    data = random.Random(9).randbytes(200_000)
    got, frames = run_transfer(a, b, data)
    assert got == data
    a2, b2 = make_pair()
    got2, _ = run_transfer(a2, b2, data)
    assert got2 == data
    # Same bytes delivered; far fewer ACK segments with one answer per batch than with
    # one per second segment.
    acks = b.counters.get("ip.out_requests", 0)
    acks2 = b2.counters.get("ip.out_requests", 0)
    assert acks < acks2 / 2, (acks, acks2)


def test_deferred_output_still_sends_one_duplicate_ack_per_segment_above_a_hole():
    """A batch with a hole: every segment above the hole gets its own immediate duplicate
    ACK (RFC 5681 §4.2), so the sender's fast retransmit (three duplicates) is not starved
    by answering batches once."""
    a, b = make_pair()
    b.tcp.defer_output = True
    ls = b.tcp_socket()
    ls.bind(("0.0.0.0", 9))
    ls.listen()
    c = a.tcp_socket()
    c.connect((B_IP, 9))
    for _ in range(10):
        for _, f in a.transmit(0):
            b.receive(f, 0, 0)
        for _, f in b.transmit(0):
            a.receive(f, 0, 0)
    assert c.state == "ESTABLISHED"
    c.send(bytes(6 * 1448))
    segs = [f for _, f in a.transmit(1000)]
    data = [f for f in segs if len(f) > 1000]
    assert len(data) == 3                  # the initial window (RFC 5681 §3.1)
    for f in data[1:]:                     # one batch; the first segment is lost
        b.receive(f, 2000, 0)
    acks = [f for _, f in b.transmit(2000) if f[23] == 6 and len(f) < 100]
    acked = {int.from_bytes(f[42:46], "big") for f in acks}
    assert len(acks) == 2, f"{len(acks)} ACK(s) for two segments above the hole"
    assert len(acked) == 1, "the duplicates all acknowledge the same edge"
