"""Random and mutated frames into a live host, as a blind attacker on the LAN would send.

The host under test (``a``, 198.18.0.1) has a TCP listener on port 80, a UDP socket on
port 7 and an established TCP connection with its legitimate peer ``b`` (198.18.0.2).
Frames come from a seeded ``random.Random`` in several families:

* noise: random bytes, or random bytes behind a plausible Ethernet/IPv4 header;
* ARP with tampered hardware/protocol types, lengths and opcodes;
* IPv4 with tampered version, header length, total length, TTL, options, flags and
  fragment offsets (including fragments of real TCP/UDP datagrams, overlapping and not);
* ICMP echo and errors quoting random or real TCP/UDP headers;
* UDP with right and wrong lengths and checksums, to the open port and closed ones;
* TCP with every flag combination, options of every kind and length (SACK blocks on any
  segment, window scale > 14, bad lengths), data offsets out of range, and sequence and
  acknowledgment numbers at the window edges and ±2³¹, to the listener, closed ports and
  the established connection;
* any of the above with a few bytes flipped afterwards.

Between frames the clock sometimes jumps (milliseconds to hours), and whatever the host
sends is carried to ``b`` and back. The attacker is blind: for the established
connection it never sends a segment that a correct TCP must accept (the right sequence
number together with an acceptable ACK, or a RST at exactly RCV.NXT), and it never
claims b's address in ARP -- both are what a peer, not an attacker, can do.

``python tests/host_fuzz.py [frames] [seed]`` runs it and prints frames/s (``make fuzz``).
"""

from __future__ import annotations

import hashlib
import random
import sys
import time

from wirestack.iface import Host, HostConfig
from wirestack.units import MS, SEC
from wirestack.wire import arp, ethernet, icmp, ip_aton, ipv4, tcp, udp
from wirestack.wire.checksum import internet_checksum

A_MAC, B_MAC = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\0\x02"
A_IP, B_IP = "198.18.0.1", "198.18.0.2"
M32 = 0xFFFFFFFF
BACKLOG = 16


class FuzzedHost:
    """The host under test, its peer, and the frame generator."""

    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self.now = 0
        cfg = HostConfig()
        self.a = Host("a", rng=random.Random(seed + 1), config=cfg)
        self.b = Host("b", rng=random.Random(seed + 2), config=cfg)
        self.a.add_interface(A_MAC, A_IP + "/24")
        self.b.add_interface(B_MAC, B_IP + "/24")
        self.a.log.limit = 20_000           # the event log is bounded; keep the test's small
        self.aip, self.bip = ip_aton(A_IP), ip_aton(B_IP)
        self.listener = self.a.tcp_socket()
        self.listener.bind(("0.0.0.0", 80))
        self.listener.listen(BACKLOG)
        self.udp = self.a.udp_socket()
        self.udp.bind(("0.0.0.0", 7))
        self.client = self.b.tcp_socket()
        self.client.connect((A_IP, 80))
        self.shuttle()
        self.server = self.listener.accept()
        assert self.server is not None and self.client.state == "ESTABLISHED"
        self.conn = self.a.tcp.connections()[0]      # a's side of the established connection
        self.cport = self.conn.rport
        self.frames = 0
        self._families = [
            (3, self.noise), (1, self.arp_frame), (3, self.ip_tampered), (2, self.icmp_frame),
            (2, self.udp_frame), (8, self.tcp_frame), (2, self.fragment),
        ]
        self._weights = []
        total = 0
        for w, _ in self._families:
            total += w
            self._weights.append(total)

    # ------------------------------------------------------------------ driving
    def shuttle(self, rounds: int = 50) -> None:
        """Carry frames between a and b until both are quiet (at the current time)."""
        a, b, now = self.a, self.b, self.now
        for _ in range(rounds):
            moved = False
            for _, f in a.transmit(now):
                moved = True
                b.receive(f, now)
            for _, f in b.transmit(now):
                moved = True
                a.receive(f, now)
            if not moved:
                return

    def advance(self, dt: int) -> None:
        """Move the clock, firing both hosts' timers on the way."""
        end = self.now + dt
        while True:
            ts = [t for t in (self.a.poll_at(), self.b.poll_at()) if t is not None]
            t = min(ts) if ts else None
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.shuttle()
        self.now = end
        self.shuttle()

    def run(self, n: int) -> None:
        rng = self.rng
        for _ in range(n):
            self.a.receive(self.frame(), self.now)
            r = rng.random()
            if r < 0.02:
                self.shuttle()
            if r < 0.002:
                self.advance(rng.choice((1 * MS, 200 * MS, 1 * SEC, 31 * SEC, 3600 * SEC)))
            elif r < 0.02:
                self.now += rng.randrange(1, 2 * MS)
            self.frames += 1
        self.shuttle()

    def check_bounds(self) -> None:
        """Every table of the host stays bounded, whatever arrived."""
        a = self.a
        cfg = a.config
        assert a.reassembler.bytes_held <= cfg.reassembly_max_bytes
        assert len(a.reassembler.pending) <= cfg.reassembly_max_datagrams
        assert len(a.arp.entries) <= a.arp.max_entries
        assert len(a.arp.pending) <= 1024
        assert a.tcp.connection_count() <= BACKLOG + 1 + 64     # half-open + ours + closing
        assert self.listener.stats()["accept_queue"] <= BACKLOG
        assert len(self.udp.queue) <= self.udp.rcvbuf_datagrams
        assert len(a.log) <= a.log.limit

    def transfer(self, size: int = 4 * 1024 * 1024) -> bool:
        """Move ``size`` bytes b -> a over the established connection; True if intact."""
        data = random.Random(7).randbytes(size)
        want = hashlib.sha256(data).hexdigest()
        got = hashlib.sha256()
        n = off = 0
        for _ in range(200_000):
            if off < size:
                off += self.client.send(memoryview(data)[off:off + 65536])
            self.advance(1 * MS)
            while True:
                try:
                    d = self.server.recv(1 << 20)
                except BlockingIOError:
                    break
                if not d:
                    break
                got.update(d)
                n += len(d)
            if n >= size:
                break
        return n == size and got.hexdigest() == want

    # ------------------------------------------------------------------ frame families
    def frame(self) -> bytes:
        rng = self.rng
        x = rng.randrange(self._weights[-1])
        for (_, make), w in zip(self._families, self._weights):
            if x < w:
                f = make()
                break
        if rng.random() < 0.15:
            f = self.flip(f)
        return f

    def flip(self, f: bytes) -> bytes:
        rng = self.rng
        b = bytearray(f)
        if not b:
            return f
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.1:
            b = b[:rng.randrange(len(b) + 1)]
        return bytes(b)

    def eth(self, ethertype: int, payload: bytes) -> bytes:
        dst = A_MAC if self.rng.random() < 0.9 else b"\xff" * 6
        return ethernet.build(dst, self.src_mac(), ethertype, payload, pad=False)

    def src_mac(self) -> bytes:
        return bytes([2, 0x66, 0, 0, 0, self.rng.randrange(256)])

    def src_ip(self) -> bytes:
        r = self.rng.random()
        if r < 0.4:
            return self.bip
        if r < 0.7:
            return bytes([198, 18, 0, self.rng.randrange(3, 255)])
        return self.rng.randbytes(4)

    def noise(self) -> bytes:
        rng = self.rng
        body = rng.randbytes(rng.randrange(0, 1600))
        if rng.random() < 0.5:
            return body
        if rng.random() < 0.5:
            return self.eth(0x0806, body)
        hdr = bytearray(ipv4.build_simple_header(self.src_ip(), self.aip, rng.choice((1, 6, 17, 99)),
                                                 len(body)))
        return self.eth(0x0800, bytes(hdr) + body)

    def arp_frame(self) -> bytes:
        rng = self.rng
        spa = bytes([198, 18, 0, rng.randrange(3, 255)])     # never b's address (see above)
        tpa = self.aip if rng.random() < 0.7 else rng.randbytes(4)
        p = bytearray(arp.build(rng.choice((1, 2, 3, 0, 0xFFFF)), self.src_mac(), spa,
                                rng.randbytes(6), tpa))
        k = rng.random()
        if k < 0.2:
            p[rng.randrange(0, 6)] = rng.randrange(256)       # htype, ptype, hlen, plen
        elif k < 0.3:
            p = p[:rng.randrange(len(p))]
        return self.eth(0x0806, bytes(p))

    def ip_tampered(self) -> bytes:
        rng = self.rng
        src = self.src_ip()
        proto, payload = self.transport(src)
        opts = b""
        if rng.random() < 0.2:
            opts = rng.randbytes(rng.randrange(0, 11) * 4)
        dgram = bytearray(ipv4.build_header(src, self.aip, proto, len(payload), options=opts,
                                            ttl=rng.choice((0, 1, 64, 255)),
                                            ident=rng.randrange(65536),
                                            df=rng.random() < 0.5) + payload)
        k = rng.randrange(6)
        if k == 0:
            dgram[0] = (rng.randrange(16) << 4) | rng.randrange(16)    # version, IHL
        elif k == 1:
            v = rng.choice((0, 19, 20, len(dgram) - 1, len(dgram) + 1, 65535, rng.randrange(65536)))
            dgram[2:4] = v.to_bytes(2, "big")                          # total length
        elif k == 2:
            dgram[6:8] = rng.randrange(65536).to_bytes(2, "big")        # flags, offset
        elif k == 3:
            dgram[9] = rng.randrange(256)                               # protocol
        if rng.random() < 0.7:
            hl = (dgram[0] & 0xF) * 4
            if 20 <= hl <= len(dgram):
                dgram[10:12] = b"\0\0"
                dgram[10:12] = internet_checksum(bytes(dgram[:hl])).to_bytes(2, "big")
        return self.eth(0x0800, bytes(dgram))

    def transport(self, src: bytes) -> tuple[int, bytes]:
        """(protocol, payload) of a random transport segment from ``src``."""
        r = self.rng.random()
        if r < 0.6:
            return 6, self.tcp_segment(src)
        if r < 0.85:
            return 17, self.udp_datagram(src)
        return 1, self.icmp_message()

    def ip(self, src: bytes, proto: int, payload: bytes, **kw) -> bytes:
        return self.eth(0x0800, ipv4.build(src, self.aip, proto, payload,
                                           ident=self.rng.randrange(65536), **kw))

    def icmp_frame(self) -> bytes:
        return self.ip(self.src_ip(), 1, self.icmp_message())

    def icmp_message(self) -> bytes:
        rng = self.rng
        k = rng.random()
        if k < 0.3:
            return icmp.build_echo(rng.random() < 0.8, rng.randrange(65536), rng.randrange(65536),
                                   rng.randbytes(rng.randrange(0, 200)))
        # An error quoting one of "our" datagrams: TCP (maybe the established connection,
        # with a random sequence number) or UDP.
        if rng.random() < 0.5:
            sport, dport = (80, self.cport) if rng.random() < 0.5 else (rng.randrange(65536), rng.randrange(65536))
            quoted_l4 = tcp.build(self.aip, self.bip, sport, dport, rng.getrandbits(32),
                                  rng.getrandbits(32), rng.randrange(256), 1000)
            proto = 6
        else:
            quoted_l4 = udp.build(self.aip, self.bip, 7, rng.randrange(65536), b"q" * 8)
            proto = 17
        quoted = ipv4.build(self.aip, self.bip if rng.random() < 0.7 else rng.randbytes(4), proto, quoted_l4)
        quoted = quoted[:rng.choice((20, 27, 28, 48, len(quoted)))]
        typ, code = rng.choice(((3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 13), (11, 0), (11, 1),
                                (12, 0), (4, 0), (5, 1), (rng.randrange(256), rng.randrange(256))))
        mtu = rng.choice((0, 1, 67, 68, 296, 576, 1500, 65535))
        return icmp.build(typ, code, (0).to_bytes(2, "big") + mtu.to_bytes(2, "big"), quoted)

    def udp_frame(self) -> bytes:
        src = self.src_ip()
        return self.ip(src, 17, self.udp_datagram(src))

    def udp_datagram(self, src: bytes) -> bytes:
        rng = self.rng
        dport = 7 if rng.random() < 0.5 else rng.randrange(65536)
        d = bytearray(udp.build(src, self.aip, rng.randrange(65536), dport,
                                rng.randbytes(rng.randrange(0, 1400))))
        k = rng.random()
        if k < 0.2:
            d[4:6] = rng.choice((0, 7, 8, 9, len(d) + 1, 65535)).to_bytes(2, "big")
        elif k < 0.3:
            d[6:8] = rng.choice((b"\0\0", b"\xff\xff", rng.randbytes(2)))
        return bytes(d)

    def tcp_frame(self) -> bytes:
        src = self.src_ip()
        seg = self.tcp_segment(src)
        return self.ip(src, 6, seg)

    def tcp_options(self) -> bytes:
        rng = self.rng
        k = rng.randrange(6)
        if k == 0:
            return b""
        if k == 1:
            return tcp.encode_options(mss=rng.choice((0, 1, 536, 1460, 65535)),
                                      wscale=rng.choice((None, 0, 7, 14, 15, 100, 255)),
                                      sack_permitted=rng.random() < 0.5,
                                      ts=(rng.getrandbits(32), rng.getrandbits(32)) if rng.random() < 0.5 else None)
        if k == 2:
            # SACK blocks on any segment, with edges anywhere
            base = self.conn.snd_una
            n = rng.randrange(1, 5)
            blocks = []
            for _ in range(n):
                s = (base + rng.choice((0, 1, -1, 1 << 31, rng.getrandbits(32)))) & M32
                blocks.append((s, (s + rng.choice((0, 1, 1460, -5, 1 << 31))) & M32))
            body = b"".join(x.to_bytes(4, "big") + y.to_bytes(4, "big") for x, y in blocks)
            opt = bytes([5, 2 + len(body)]) + body
            return opt + b"\x01" * (-len(opt) % 4)
        if k == 3:
            # one option with a bad length (0, 1, beyond the header)
            opt = bytes([rng.choice((2, 3, 4, 5, 8, 30, 254)), rng.choice((0, 1, 2, 3, 40, 255))])
            opt += rng.randbytes(rng.randrange(0, 10))
            return (opt + b"\0" * (-len(opt) % 4))[:40]
        n = rng.randrange(0, 11) * 4
        return rng.randbytes(n)

    def tcp_segment(self, src: bytes) -> bytes:
        rng = self.rng
        flags = rng.randrange(256)
        to_conn = src == self.bip and rng.random() < 0.6
        if to_conn:
            sport, dport = self.cport, 80
            seq, ack, flags = self.blind_numbers(flags)
        else:
            sport = rng.randrange(65536)
            dport = 80 if rng.random() < 0.6 else rng.randrange(65536)
            seq, ack = rng.getrandbits(32), rng.getrandbits(32)
        data = rng.randbytes(rng.choice((0, 0, 1, 100, 1460)))
        seg = bytearray(tcp.build(src, self.aip, sport, dport, seq, ack, flags,
                                  rng.choice((0, 1, 65535, rng.randrange(65536))), data,
                                  self.tcp_options(), rng.randrange(65536) if flags & tcp.URG else 0))
        if rng.random() < 0.15:
            seg[12] = (rng.randrange(16) << 4) | (seg[12] & 0xF)     # data offset
            seg[16:18] = b"\0\0"
            pseudo = src + self.aip + bytes([0, 6]) + len(seg).to_bytes(2, "big")
            seg[16:18] = internet_checksum(pseudo + bytes(seg)).to_bytes(2, "big")
        return bytes(seg)

    def blind_numbers(self, flags: int) -> tuple[int, int, int]:
        """Sequence and acknowledgment numbers near the edges of the established
        connection's windows, never both right (a blind attacker)."""
        rng = self.rng
        c = self.conn
        rn, una, smax = c.rcv_nxt, c.snd_una, c.snd_max
        rwnd = max(c.rcv_adv - rn, 0)
        seq = (rn + rng.choice((-1, 0, 1, rwnd - 1, rwnd, rwnd + 1, -65536, 1 << 31, -(1 << 31),
                                (1 << 31) - 1, rng.getrandbits(32)))) & M32
        ack = (una + rng.choice((0, 1, -1, smax - una + 1, -c.max_snd_wnd - 1, 1 << 31, -(1 << 31),
                                 rng.getrandbits(32)))) & M32
        d = (seq - rn) & M32
        a = (ack - una) & M32
        seq_ok = d < rwnd or d >= M32 - 2000          # in the window, or just below it
        ack_ok = a <= smax - una or a >= (M32 + 1 - c.max_snd_wnd)
        if flags & tcp.RST and d == 0:
            seq = (seq + 1 + rng.randrange(rwnd or 1)) & M32   # never the exact reset
        if seq_ok and (ack_ok or not flags & tcp.ACK):
            # guess both numbers and it is the peer speaking: make the ACK unacceptable
            flags |= tcp.ACK
            ack = (una + rng.choice((smax - una + 1 + rng.randrange(1 << 20), 1 << 31))) & M32
        if flags & tcp.SYN and not flags & tcp.ACK:
            flags |= tcp.ACK
            ack = (una + (1 << 31)) & M32
        return seq, ack, flags

    def fragment(self) -> bytes:
        rng = self.rng
        src = self.src_ip() if rng.random() < 0.5 else self.bip
        proto, payload = self.transport(src)
        if rng.random() < 0.5:
            # a piece of a real datagram
            off = rng.randrange(0, max(len(payload), 8)) // 8 * 8
            length = rng.choice((8, 16, 24, 1480, len(payload) - off))
            piece = payload[off:off + max(length, 0)]
        else:
            off = rng.choice((0, 8, 1480, 65000, 65528, rng.randrange(0, 8192) * 8))
            piece = rng.randbytes(rng.choice((1, 7, 8, 9, 24, 1480)))
        more = rng.random() < 0.7
        ident = rng.randrange(16)                                     # collide on purpose
        return self.eth(0x0800, ipv4.build(src, self.aip, proto, piece, ident=ident, mf=more,
                                           frag_offset=off, df=rng.random() < 0.1))


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    seed = int(argv[2]) if len(argv) > 2 else 1
    fz = FuzzedHost(seed)
    errors = 0
    t0 = time.perf_counter()
    done = 0
    step = 10_000
    while done < n:
        k = min(step, n - done)
        try:
            fz.run(k)
        except Exception as exc:             # report, and count: the point of the run
            errors += 1
            print(f"exception after ~{done} frames: {type(exc).__name__}: {exc}", flush=True)
        fz.check_bounds()
        done += k
    dt = time.perf_counter() - t0
    intact = fz.transfer()
    print(f"{n} frames in {dt:.1f} s: {n / dt:,.0f} frames/s, {errors} exceptions, "
          f"connection {'intact (4 MB, sha256 ok)' if intact else 'BROKEN'}")
    top = sorted(((v, k) for k, v in fz.a.counters.items()), reverse=True)[:12]
    print("top counters:", ", ".join(f"{k}={v}" for v, k in top))
    return 0 if errors == 0 and intact else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
