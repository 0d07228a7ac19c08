"""Fuzz parse_frame: whatever the input, it returns a Frame or raises MalformedPacket.

parse_frame turns any unexpected exception into MalformedPacket("undecodable frame ...")
as a last line of defence; that would hide real decoder bugs from a fuzz test, so here a
MalformedPacket that *wraps* another exception (``__cause__`` set) counts as a failure too.

* 100,000 seeded random byte strings of 0-1600 bytes. Pure noise mostly stops at the
  Ethernet type, so part of them get a plausible skeleton first (ethertype IPv4/ARP, a
  version-4 first byte, a total length that fits, a correct IP header checksum, a correct
  transport checksum) with random bytes everywhere else.
* 100,000 mutations of valid frames: bit flips, byte overwrites, truncation, extension,
  length-field tampering (IP total length / IHL, UDP length, TCP data offset, TCP option
  lengths), each with and without fixing up the checksums afterwards.
Each input goes through parse_frame, parse_frame(verify_checksums=False) and
parse_frame(fcs=True) (with a correct FCS half the time so the CRC check is passed).
"""

from __future__ import annotations

import random
import time

from wirestack.wire import MalformedPacket, Frame, arp, checksum, ethernet, icmp, ipv4, parse_frame, tcp, udp

SEED = 20240611
N_RANDOM = 100_000
N_MUTATED = 100_000


class Failures:
    def __init__(self):
        self.items = []
        self.calls = 0
        self.returned = 0
        self.counters = {}

    def run(self, data: bytes, **kw) -> None:
        self.calls += 1
        try:
            f = parse_frame(data, **kw)
        except MalformedPacket as e:
            if e.__cause__ is not None or not e.reason or not isinstance(e.counter, str):
                self.items.append((data.hex(), kw, f"wrapped {e.__cause__!r}: {e.reason}"))
            self.counters[e.counter] = self.counters.get(e.counter, 0) + 1
            return
        except BaseException as e:  # noqa: BLE001 -- exactly what must never happen
            self.items.append((data.hex(), kw, repr(e)))
            return
        self.returned += 1
        problem = check_frame(f, data, kw.get("fcs", False))
        if problem:
            self.items.append((data.hex(), kw, problem))


def check_frame(f, data, fcs) -> str | None:
    """Invariants of a returned Frame."""
    if not isinstance(f, Frame) or f.eth is None:
        return "not a Frame with an Ethernet header"
    transports = [x for x in (f.arp, f.icmp, f.udp, f.tcp) if x is not None]
    if len(transports) > 1:
        return "more than one upper layer"
    if (f.icmp or f.udp or f.tcp) and f.ip is None:
        return "transport without IP"
    if len(f.payload) > len(data):
        return "payload longer than the frame"
    if f.ip is not None:
        if f.ip.total_length > len(data) - 14 - (4 if fcs else 0):
            return "IP total length beyond the frame"
        if f.ip.header_length < 20 or f.ip.header_length > f.ip.total_length:
            return "bad IP header length accepted"
    if f.tcp is not None and not 20 <= f.tcp.header_length <= 60:
        return "bad TCP header length accepted"
    if f.udp is not None and f.udp.length < 8:
        return "bad UDP length accepted"
    return None


# --------------------------------------------------------------------------- generators

def fix_checksums(b: bytearray) -> None:
    """Best effort: make the IP header checksum and the transport checksum right for
    whatever the bytes now say (so mutations reach the deeper decoders)."""
    if len(b) < 34 or b[12:14] != b"\x08\x00":
        return
    hl = (b[14] & 0x0F) * 4
    if hl < 20 or len(b) < 14 + hl:
        return
    b[24:26] = b"\x00\x00"
    b[24:26] = checksum.internet_checksum(bytes(b[14:14 + hl])).to_bytes(2, "big")
    total = int.from_bytes(b[16:18], "big")
    if total < hl or 14 + total > len(b):
        return
    t0, t1 = 14 + hl, 14 + total
    proto, src, dst = b[23], bytes(b[26:30]), bytes(b[30:34])
    if proto == 1 and t1 - t0 >= 8:
        b[t0 + 2:t0 + 4] = b"\x00\x00"
        b[t0 + 2:t0 + 4] = checksum.internet_checksum(bytes(b[t0:t1])).to_bytes(2, "big")
    elif proto == 17 and t1 - t0 >= 8:
        ulen = int.from_bytes(b[t0 + 4:t0 + 6], "big")
        if 8 <= ulen <= t1 - t0:
            b[t0 + 6:t0 + 8] = b"\x00\x00"
            c = checksum.internet_checksum(bytes(b[t0:t0 + ulen]),
                                           checksum.pseudo_header_sum(src, dst, 17, ulen))
            b[t0 + 6:t0 + 8] = (c or 0xFFFF).to_bytes(2, "big")
    elif proto == 6 and t1 - t0 >= 20:
        b[t0 + 16:t0 + 18] = b"\x00\x00"
        c = checksum.internet_checksum(bytes(b[t0:t1]), checksum.pseudo_header_sum(src, dst, 6, t1 - t0))
        b[t0 + 16:t0 + 18] = c.to_bytes(2, "big")


def random_input(rng: random.Random) -> bytes:
    n = rng.randint(0, 1600)
    b = bytearray(rng.randbytes(n))
    style = rng.random()
    if style < 0.4 or n < 14:
        return bytes(b)  # pure noise
    b[12:14] = rng.choice((b"\x08\x00", b"\x08\x00", b"\x08\x00", b"\x08\x06"))
    if b[12:14] == b"\x08\x06":
        if n >= 22 and rng.random() < 0.7:
            b[14:20] = b"\x00\x01\x08\x00\x06\x04"
        return bytes(b)
    if n >= 15:
        b[14] = 0x40 | rng.choice((5, 5, 5, rng.randint(0, 15)))
    if n >= 18 and rng.random() < 0.8:
        b[16:18] = rng.randint(0, n - 14).to_bytes(2, "big")
    if n >= 24 and rng.random() < 0.8:
        b[23] = rng.choice((1, 6, 17, rng.randint(0, 255)))
        if rng.random() < 0.7:
            b[20:22] = rng.choice((b"\x00\x00", b"\x40\x00", b"\x20\x00", bytes(b[20:22])))
    if rng.random() < 0.8:
        fix_checksums(b)
    return bytes(b)


def corpus() -> list[bytes]:
    a, b = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    m1, m2 = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
    data = bytes(range(256)) * 6

    def ip(proto, seg, **kw):
        return ethernet.build(m2, m1, 0x0800, ipv4.build(a, b, proto, seg, **kw))

    frames = [ethernet.build(b"\xff" * 6, m1, 0x0806, arp.build(1, m1, a, bytes(6), b)),
              ethernet.build(m1, m2, 0x0806, arp.build(2, m2, b, m1, a))]
    for n in (0, 3, 56, 1400):
        frames.append(ip(1, icmp.build_echo(True, 1, n, data[:n])))
        frames.append(ip(17, udp.build(a, b, 1000 + n, 53, data[:n])))
        frames.append(ip(6, tcp.build(a, b, 80, 40000 + n, n, 7, tcp.ACK | tcp.PSH, 1000, data[:n],
                                      options=tcp.encode_options(ts=(n, 1), sack_blocks=[(1, 2)] * (n % 4)))))
    frames.append(ip(6, tcp.build(a, b, 1, 2, 3, 0, tcp.SYN, 65535, options=tcp.encode_options(
        mss=1460, wscale=7, sack_permitted=True, ts=(1, 0)))))
    frames.append(ip(6, tcp.build(a, b, 1, 2, 3, 0, tcp.SYN, 65535, options=tcp.TcpOptions(
        mss=536, unknown=((30, b"\x00\x81"), (254, b"abcd"))).encode())))
    offending = ipv4.build(a, b, 17, udp.build(a, b, 5, 6, data[:100]), df=True)
    frames.append(ip(1, icmp.build_error(3, 4, offending, next_hop_mtu=1280)))
    frames.append(ip(1, icmp.build_error(11, 0, offending)))
    frames.append(ip(17, udp.build(a, b, 7, 7, b"opts"), options=bytes([7, 11, 4]) + bytes(8)))
    frames.append(ip(17, udp.build(a, b, 7, 7, data[:400])[:200], mf=True, ident=5))
    frames.append(ip(17, data[:200], frag_offset=200, ident=5))
    frames.append(ethernet.build(m2, m1, 0x86DD, data[:60]))
    return frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        if op == 0 and b:  # flip 1-8 bits
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # overwrite bytes
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.choice((0, 0xFF, rng.randrange(256)))
        elif op == 2:  # truncate
            del b[rng.randint(0, len(b)):]
        elif op == 3:  # extend
            b += rng.randbytes(rng.randint(1, 64))
        elif op == 4 and len(b) >= 18:  # IP total length / IHL
            if rng.random() < 0.5:
                b[16:18] = rng.choice((0, 19, 20, len(b) - 14, len(b) - 13, 0xFFFF,
                                       rng.randrange(0x10000))).to_bytes(2, "big")
            else:
                b[14] = (b[14] & 0xF0) | rng.randrange(16)
        elif op == 5 and len(b) >= 42:  # transport length fields
            hl = max(20, (b[14] & 0x0F) * 4)
            t0 = 14 + hl
            if t0 + 13 <= len(b):
                if b[23] == 17:
                    b[t0 + 4:t0 + 6] = rng.choice((0, 7, 8, 9, 0xFFFF, rng.randrange(0x10000))).to_bytes(2, "big")
                else:
                    b[t0 + 12] = (rng.randrange(16) << 4) | (b[t0 + 12] & 0x0F)
        elif op == 6 and len(b) >= 56 and b[23] == 6:  # a TCP option length byte
            hl = max(20, (b[14] & 0x0F) * 4)
            i = 14 + hl + 20 + rng.randrange(max(1, min(40, len(b) - 14 - hl - 20)))
            if i < len(b):
                b[i] = rng.choice((0, 1, 2, 3, 10, 40, 255, rng.randrange(256)))
    if rng.random() < 0.6:
        fix_checksums(b)
    return bytes(b)


def feed(fails: Failures, rng: random.Random, data: bytes) -> None:
    fails.run(data)
    fails.run(data, verify_checksums=False)
    fails.run(data + checksum.fcs(data) if rng.random() < 0.5 else data, fcs=True)


def test_fuzz_parse_frame_raises_only_malformed_packet():
    rng = random.Random(SEED)
    fails = Failures()
    t0 = time.perf_counter()
    for _ in range(N_RANDOM):
        feed(fails, rng, random_input(rng))
    frames = corpus()
    for f in frames:  # the corpus itself is valid
        parse_frame(f)
    for _ in range(N_MUTATED):
        feed(fails, rng, mutate(rng, rng.choice(frames)))
    # odd input types
    for thing in (memoryview(b"\x00" * 60), bytearray(60), memoryview(bytes(120))[::2], None, 3.5, "x" * 60):
        fails.run(thing)
    elapsed = time.perf_counter() - t0
    print(f"\nfuzz: {fails.calls} calls in {elapsed:.1f}s, {fails.returned} returned a Frame; "
          f"rejections by counter: {dict(sorted(fails.counters.items()))}")
    assert not fails.items, f"{len(fails.items)} bad outcomes, first ones:\n" + "\n".join(
        map(repr, fails.items[:10]))
    # the generators must reach every decoder, not just bounce off the Ethernet type
    for counter in ("eth.rx_runts", "eth.rx_fcs_errors", "eth.rx_unknown_type", "arp.in_malformed",
                    "arp.in_unsupported", "ip.in_truncated", "ip.in_bad_version", "ip.in_hdr_errors",
                    "ip.in_bad_checksum", "icmp.in_malformed", "icmp.in_csum_errors",
                    "udp.in_hdr_errors", "udp.in_csum_errors", "tcp.in_hdr_errors",
                    "tcp.in_csum_errors", "tcp.in_bad_options"):
        assert fails.counters.get(counter, 0) > 0, counter
    assert fails.returned > 10_000


def test_memoryview_of_any_shape_decodes_like_bytes():
    import array

    a, b = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4.build(a, b, 6, tcp.build(
        a, b, 1, 2, 3, 4, tcp.ACK, 5, b"xy", options=tcp.encode_options(mss=1460, wscale=200))))
    want = parse_frame(frame)
    views = [memoryview(frame).cast("b"), memoryview(frame).cast("c"),
             memoryview(array.array("H", frame)),
             memoryview(bytes(b for pair in zip(frame, frame) for b in pair))[::2],
             memoryview(frame).cast("B", (2, len(frame) // 2))]
    for v in views:
        got = parse_frame(v)
        assert got.tcp == want.tcp and got.tcp.options.wscale == 200, v
        assert (got.eth, got.ip) == (want.eth, want.ip) and bytes(got.payload) == b"xy"


def test_fuzz_icmp_quoted_datagram():
    """IcmpMessage.quoted() decodes whatever an ICMP error quotes: only MalformedPacket."""
    rng = random.Random(SEED + 1)
    a, b = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    good = ipv4.build(a, b, 6, tcp.build(a, b, 1, 2, 3, 4, tcp.ACK, 5, b"x" * 50), options=b"\x01" * 8)
    returned = 0
    for i in range(20_000):
        if i % 2:
            q = bytearray(good[:rng.randint(0, len(good))])
            for _ in range(rng.randint(0, 3)):
                if q:
                    q[rng.randrange(len(q))] = rng.randrange(256)
        else:
            q = bytearray(rng.randbytes(rng.randint(0, 80)))
            if q:
                q[0] = 0x40 | rng.randrange(16)
        msg = icmp.parse(icmp.build(rng.choice((3, 11, 12)), rng.randrange(16), rng.randbytes(4), q))
        try:
            hdr, data = msg.quoted()
        except MalformedPacket as e:
            assert e.counter == "icmp.in_malformed"
            continue
        returned += 1
        assert hdr.header_length >= 20 and len(q) >= hdr.header_length
        assert bytes(data) == bytes(q[hdr.header_length:])
        assert (hdr.src, hdr.dst) == (bytes(q[12:16]), bytes(q[16:20]))
    assert returned > 1000
    with_echo = icmp.parse(icmp.build_echo(True, 1, 2, good))
    try:
        with_echo.quoted()
    except MalformedPacket as e:
        assert e.counter == "icmp.in_malformed"
    else:
        raise AssertionError("quoted() of an echo request must be refused")
