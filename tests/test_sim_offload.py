"""The simulated NIC's offloads (sim/offload.py): TSO cuts a super-segment into the frames a
GSO-like segmenter written in tests/test_offload.py makes, GRO merges in-order frames and
flushes on anything else, a merged segment is received like its pieces, and a transfer
through offloading NICs arrives intact with only MTU-sized frames on the wire while the
stacks handle far fewer segments. Also the ``offload`` lab."""

from __future__ import annotations

import hashlib
import random

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from test_offload import gso_cut, make_pair

from wirestack.labs.experiments import LABS, run_lab
from wirestack.labs.transfer import run_transfer
from wirestack.runtime.sim import Network
from wirestack.sim import Nic, Scheduler
from wirestack.sim.offload import Offload, thin_acks
from wirestack.trace.pcap import PcapReader
from wirestack.wire.checksum import fcs

B_IP = "198.18.0.2"


def established(a, b, now=0, **opts):
    """a connected to b's port 9 (``opts``: socket options of both ends): (client socket,
    server socket)."""
    ls = b.tcp_socket(**opts)
    ls.bind(("0.0.0.0", 9))
    ls.listen()
    c = a.tcp_socket(initial_window=20, **opts)     # room for a super-segment of many pieces
    c.connect((B_IP, 9))
    for _ in range(10):
        for _, f in a.transmit(now):
            b.receive(f, now, 0)
        for _, f in b.transmit(now):
            a.receive(f, now, 0)
    assert c.state == "ESTABLISHED"
    return c, ls.accept()


def super_segment(data: bytes):
    """(a, b, server socket, the frame a's TCP hands a TSO device for ``data``)."""
    a, b = make_pair()
    a.tcp.gso_max = 0xFFFF - 52
    a.interfaces[0].tso = True
    c, srv = established(a, b)
    c.send(data)
    frames = [f for _, f in a.transmit(1000)]
    big = [f for f in frames if len(f) > 1514]
    assert len(big) == 1, [len(f) for f in frames]
    return a, b, srv, big[0]


# -- TSO --------------------------------------------------------------------------------------

def test_tso_cuts_like_gso_with_checksums_scapy_accepts():
    # Eleven full pieces (TCP sends the 456 bytes left over as a segment of their own).
    _, _, _, frame = super_segment(bytes(range(256)) * 64)
    pieces = Offload(1500).segment(frame)
    assert pieces == gso_cut(frame)                  # the same bytes, made independently
    assert all(len(p) <= 1514 for p in pieces)
    for i, p in enumerate(pieces):
        ip = IP(p[14:])
        want_ip, want_tcp = ip.chksum, ip[TCP].chksum
        del ip.chksum, ip[TCP].chksum
        again = IP(bytes(ip))                        # scapy recomputes both checksums
        assert (again.chksum, again[TCP].chksum) == (want_ip, want_tcp), i
        assert "P" not in str(ip[TCP].flags) or i == len(pieces) - 1


def test_the_ip_ids_of_tso_pieces_are_not_given_out_again():
    # The device numbers the pieces id, id+1, ... (RFC 6864 §4.1): the host's next
    # datagram must not reuse one of them, DF or not.
    a, b = make_pair()
    a.tcp.gso_max = 0xFFFF - 52
    a.interfaces[0].tso = True
    c, srv = established(a, b)
    c.send(bytes(range(256)) * 64)                   # 11 full pieces, then 456 bytes
    frames = [f for _, f in a.transmit(1000)]
    i = next(k for k, f in enumerate(frames) if len(f) > 1514)
    ids = [int.from_bytes(p[18:20], "big") for p in Offload(1500).segment(frames[i])]
    assert len(ids) == 11 and ids == list(range(ids[0], ids[0] + 11))
    u = a.udp_socket()
    u.sendto(b"next", (B_IP, 7))                      # the host's next datagram
    (_, nxt), = a.transmit(1000)
    assert int.from_bytes(nxt[18:20], "big") == ids[-1] + 1


def test_tso_leaves_alone_what_it_cannot_cut():
    off = Offload(1500)
    udp = bytes(12) + b"\x08\x00" + b"\x45" + bytes(8) + b"\x11" + bytes(3000)
    assert off.segment(udp) is None
    assert off.tso_super == 0


# -- GRO --------------------------------------------------------------------------------------

def test_gro_merges_in_order_pieces_into_the_super_segment_payload():
    _, _, _, frame = super_segment(bytes(20 * 1448))
    pieces = gso_cut(frame)
    off = Offload(1500)
    (merged, ok, first), = off.coalesce(pieces)
    assert ok and first == 0 and off.gro_merged == len(pieces)
    # Same headers as the first piece (but the length and IP checksum), the whole payload.
    assert merged[34:] [:4] == frame[34:38]
    ip = IP(merged[14:])
    assert ip.len == len(merged) - 14
    del ip.chksum
    assert IP(bytes(ip)).chksum == IP(merged[14:]).chksum
    assert merged[14 + 52:] == frame[14 + 52:]


def test_gro_flushes_on_an_out_of_order_frame():
    _, _, _, frame = super_segment(bytes(5 * 1448))
    p = gso_cut(frame)
    off = Offload(1500)
    out = off.coalesce([p[0], p[1], p[3], p[2], p[4]])
    seqs = [int.from_bytes(f[38:42], "big") for f, _, _ in out]
    first_seq = int.from_bytes(p[0][38:42], "big")
    assert [s - first_seq for s in seqs] == [0, 3 * 1448, 2 * 1448, 4 * 1448]
    assert [i for _, _, i in out] == [0, 2, 3, 4]
    assert len(out[0][0]) == 14 + 52 + 2 * 1448        # p0 and p1 merged, nothing else


def with_tcp(frame: bytes, **fields) -> bytes:
    """``frame`` with TCP header fields changed (scapy recomputes both checksums)."""
    ip = IP(frame[14:])
    for name, value in fields.items():
        setattr(ip[TCP], name, value)
    del ip.chksum, ip[TCP].chksum
    return frame[:14] + bytes(ip)


def test_gro_does_not_merge_across_another_ack_a_fin_or_a_bad_checksum():
    _, _, _, frame = super_segment(bytes(4 * 1448))
    p = gso_cut(frame)
    other_ack = with_tcp(p[1], ack=TCP(p[1][34:]).ack + 1)
    bad = bytearray(p[2])
    bad[-1] ^= 0xFF                                    # a damaged payload byte
    fin = with_tcp(p[3], flags="FA")
    off = Offload(1500)
    assert len(off.coalesce(p)) == 1                   # as they came: one segment
    off = Offload(1500)
    out = off.coalesce([p[0], other_ack, bytes(bad), fin])
    assert [i for _, _, i in out] == [0, 1, 2, 3] and off.gro_merged == 0
    assert [ok for _, ok, _ in out] == [True, True, False, True]   # the stack checks the bad one
    assert off.gro_bad_csum == 1


def mangled_batch(rng: random.Random, pieces: list[bytes], other: list[bytes]) -> list[bytes]:
    """A receive batch made from two flows' pieces with what a wire does to frames: reordered,
    duplicated, dropped, damaged anywhere (headers included), PSH or DF changed, and frames
    GRO leaves alone (pure ACKs, non-IP) in between."""
    batch = list(pieces)
    for f in rng.sample(other, rng.randrange(len(other) + 1)):
        batch.insert(rng.randrange(len(batch) + 1), f)
    for _ in range(rng.randrange(6)):
        i = rng.randrange(len(batch))
        what = rng.choice(("swap", "dup", "drop", "damage", "damage", "psh", "df", "ack", "arp",
                           "urg", "twin", "ipid"))
        f = bytearray(batch[i])
        if what == "swap" and i + 1 < len(batch):
            batch[i], batch[i + 1] = batch[i + 1], batch[i]
        elif what == "dup":
            batch.insert(i, batch[i])
        elif what == "drop" and len(batch) > 1:
            del batch[i]
        elif what == "damage":
            f[rng.randrange(14, len(f))] ^= 1 << rng.randrange(8)
            batch[i] = bytes(f)
        elif what == "psh" and len(f) > 47:
            f[47] |= 0x08                          # checksum now wrong unless fixed below
            fix = rng.random() < 0.5 and TCP in IP(bytes(f[14:]))   # (not if damage made a fragment)
            batch[i] = with_tcp(bytes(f), flags=int(f[47])) if fix else bytes(f)
        elif what == "df" and len(f) > 20:
            f[20] ^= 0x40
            batch[i] = bytes(f)
        elif what == "ack":
            batch.insert(i, with_tcp(pieces[0][:66], flags="A"))
        elif what == "ipid" and len(f) > 26:       # the IP id or checksum: only its sum shows it
            f[rng.choice((18, 19, 24, 25))] ^= 1 << rng.randrange(8)
            batch[i] = bytes(f)
        elif what == "urg":                        # an urgent pointer without URG: meaningless
            batch[i] = with_tcp(bytes(f), urgptr=rng.randrange(1, 9)) if len(f) > 54 else batch[i]
        elif what == "twin" and i + 1 < len(batch) and len(f) > 60 and len(batch[i + 1]) > 60:
            # One bit flipped one way here and the other way in the next frame: only a
            # check of each frame on its own sees both.
            g = bytearray(batch[i + 1])
            k = rng.randrange(60, min(len(f), len(g)))
            bit = 1 << rng.randrange(8)
            if (f[k] & bit) != (g[k] & bit):
                f[k] ^= bit
                g[k] ^= bit
                batch[i], batch[i + 1] = bytes(f), bytes(g)
        elif what == "arp":
            batch.insert(i, bytes(6) + bytes(6) + b"\x08\x06" + bytes(28))
    return batch


def coalesce_one_by_one(off: Offload, frames: list[bytes]) -> list[tuple[bytes, bool, int]]:
    """The reference GRO: every frame's checksums checked on its own, the flow compared
    key by key (what ``Offload.coalesce`` does faster and must agree with)."""
    out: list = []
    run: list = []
    run_key, run_first, nxt, size, room, open_ = b"", 0, 0, 0, 0, False
    for index, frame in enumerate(frames):
        info = off._data_segment(frame)
        if info is None or info[0] is None:
            if run:
                off._flush(run, run_first, out)
                run = []
            off._pass_up(frame, index, info, out)
            continue
        key, seq, start, end, flags = info
        plen = end - start
        if run and open_ and key == run_key and seq == nxt and plen <= size and plen <= room:
            run.append((frame, start, end))
            nxt, room = (seq + plen) & 0xFFFFFFFF, room - plen
            open_ = plen == size and not flags & 0x08
            continue
        if run:
            off._flush(run, run_first, out)
        run, run_key, run_first = [(frame, start, end)], key, index
        nxt, size = (seq + plen) & 0xFFFFFFFF, plen
        room = 0xFFFF - (start - 14) - plen
        open_ = not flags & 0x08
    if run:
        off._flush(run, run_first, out)
    return out


def test_gro_does_not_merge_two_frames_whose_damage_cancels_out():
    # A bit set in one frame and the same bit cleared in the next: the two checksum errors
    # cancel in any sum over both, so each frame must be checked on its own.
    _, _, _, frame = super_segment(bytes(range(256)) * 20)
    p = gso_cut(frame)
    k = 100
    diff = p[0][k] ^ p[1][k]
    bit = diff & -diff                      # a bit that is set in one and clear in the other
    assert bit
    a, b = bytearray(p[0]), bytearray(p[1])
    a[k] ^= bit
    b[k] ^= bit
    off = Offload(1500)
    out = off.coalesce([bytes(a), bytes(b), p[2]])
    assert [(ok, i) for _, ok, i in out] == [(False, 0), (False, 1), (True, 2)]
    assert off.gro_bad_csum == 2 and off.gro_merged == 0


def carrying(piece: bytes, payload: bytes) -> bytes:
    """The wire frame ``piece`` with ``payload`` instead of its own (scapy makes the IP
    length and both checksums again)."""
    ip = IP(piece[14:])
    ip[TCP].remove_payload()
    ip = ip / payload
    del ip.len, ip.chksum, ip[TCP].chksum
    return piece[:14] + bytes(ip)


def test_gro_checks_an_odd_length_last_piece_to_its_last_byte():
    _, _, _, frame = super_segment(bytes(range(256)) * 20)
    p = gso_cut(frame)
    odd = carrying(p[1], bytes(range(1, 124)))         # 123 bytes: an odd length
    (merged, ok, _), = Offload(1500).coalesce([p[0], odd])
    assert ok and merged[14 + 52:] == p[0][14 + 52:] + bytes(range(1, 124))
    bad = bytearray(odd)
    bad[-1] ^= 0x10                                    # the odd byte itself
    out = Offload(1500).coalesce([p[0], bytes(bad)])
    assert [(ok, i) for _, ok, i in out] == [(True, 0), (False, 1)]


def test_gro_merges_a_short_last_piece_without_its_ethernet_trailer():
    # A frame may carry bytes after its IP datagram (padding to Ethernet's 60 bytes, a
    # trailer): they are neither summed nor merged, even for a piece shorter than the
    # point where GRO cuts a frame in two to read it.
    _, _, _, frame = super_segment(bytes(range(256)) * 20)
    p = gso_cut(frame)
    # 40 bytes, far less than half an MSS, and 6 bytes of trailer
    short = carrying(p[1], bytes(range(7, 47))) + b"\xee" * 6
    off = Offload(1500)
    (merged, ok, _), = off.coalesce([p[0], short])
    assert ok and off.gro_merged == 2
    assert merged[14 + 52:] == p[0][14 + 52:] + bytes(range(7, 47))


def test_gro_does_not_merge_a_frame_whose_ip_header_is_damaged():
    _, _, _, frame = super_segment(bytes(range(256)) * 20)
    p = gso_cut(frame)
    bad = bytearray(p[1])
    bad[19] ^= 0x04                                    # the IP id: only the IP checksum shows it
    off = Offload(1500)
    out = off.coalesce([p[0], bytes(bad), p[2]])
    # Passed up unchecked: IP finds the bad header checksum and counts it.
    assert [(ok, i) for _, ok, i in out] == [(True, 0), (False, 1), (True, 2)]
    assert off.gro_merged == 0


def coalesces_like_one_by_one(batch: list[bytes], trial: int) -> int:
    """Assert that ``coalesce`` hands up what ``coalesce_one_by_one`` does, counters too;
    returns how many frames were merged."""
    fast, slow = Offload(1500), Offload(1500)
    assert fast.coalesce(batch) == coalesce_one_by_one(slow, batch), trial
    assert (fast.gro_up, fast.gro_merged, fast.gro_bad_csum) == \
        (slow.gro_up, slow.gro_merged, slow.gro_bad_csum), trial
    assert fast.gro_frames == len(batch)
    return fast.gro_merged


def test_gro_takes_the_same_decisions_as_checking_one_frame_at_a_time():
    # coalesce() compares headers under a mask and reads each frame as two numbers;
    # what it hands up must be exactly what checking every frame on its own gives.
    _, _, _, frame = super_segment(bytes(range(256)) * 60)
    pieces = gso_cut(frame)
    other = [with_tcp(p, sport=TCP(p[34:]).sport + 1) for p in pieces[:6]]
    rng = random.Random(7)
    for trial in range(400):
        coalesces_like_one_by_one(mangled_batch(rng, pieces, other), trial)


@pytest.mark.parametrize("options", [
    [],                                                         # a 20-byte TCP header
    [("NOP", None), ("NOP", None), ("Timestamp", (7, 9))],     # 32 bytes, as Linux sends
    [("SAck", (1000, 2000, 3000, 4000, 5000, 6000)), ("NOP", None), ("NOP", None),
     ("Timestamp", (7, 9))],                                    # 60 bytes, the longest
])
def test_gro_agrees_with_one_frame_at_a_time_for_any_header_and_piece_length(options):
    # The header mask, the cut of a frame into two numbers and the TCP check derived from
    # the run's sums depend on the header length and the piece length: other headers,
    # odd and short pieces, frames with bytes after their datagram.
    rng = random.Random(len(options))
    merged = 0
    for trial in range(60):
        size = rng.choice((1, 2, 7, 40, 41, 535, 1447, 1448, 1460))
        seq, pieces = rng.randrange(1 << 32), []
        for i in range(rng.randrange(1, 8)):
            n = size if rng.random() < 0.7 else rng.randrange(1, size + 1)
            tcp = TCP(sport=5001, dport=9, seq=seq, ack=77, flags="A", window=900, options=options)
            frame = Ether() / IP(src="198.18.0.1", dst=B_IP, id=i, flags="DF") / tcp / rng.randbytes(n)
            pieces.append(bytes(frame) + (rng.randbytes(rng.randrange(1, 9)) if rng.random() < 0.3 else b""))
            seq += n
        if options and rng.random() < 0.5:      # a later timestamp echo: a new run
            i = rng.randrange(len(pieces))
            pieces[i] = with_tcp(pieces[i], options=options[:-1] + [("Timestamp", (7, 10))])
        other = [with_tcp(pieces[0], sport=5002)]
        merged += coalesces_like_one_by_one(mangled_batch(rng, pieces, other), trial)
    assert merged > 60                  # the batches did make runs to merge


def with_payload(frame: bytes, payload: bytes, flags: int | None = None) -> bytes:
    """The super-segment ``frame`` (its 66 bytes of headers) carrying ``payload`` instead:
    IP length and checksum made again, the TCP checksum field holding the pseudo-header sum
    (what a TSO device starts from), the TCP flags replaced when given."""
    n = len(payload)
    h = bytearray(frame[:66])
    h[16:18] = (20 + 32 + n).to_bytes(2, "big")
    h[24:26] = b"\0\0"
    h[24:26] = (0xFFFF - (int.from_bytes(h[14:34], "big") % 0xFFFF or 0xFFFF)).to_bytes(2, "big")
    if flags is not None:
        h[47] = flags
    ps = int.from_bytes(h[26:34], "big") + 6 + 32 + n
    h[50:52] = (ps % 0xFFFF or 0xFFFF).to_bytes(2, "big")
    return bytes(h) + payload


def test_tso_cuts_odd_lengths_and_flags_like_gso():
    _, _, _, frame = super_segment(bytes(range(256)) * 40)
    for n, flags in ((3 * 1448 + 1, 0x19), (1449, 0x98), (5 * 1448 - 7, 0x10), (2897, 0x11)):
        big = with_payload(frame, bytes(range(251)) * (n // 251) + bytes(n % 251), flags)
        assert Offload(1500).segment(big) == gso_cut(big), (n, flags)


def test_tso_cuts_like_gso_at_any_mtu():
    # Odd MTUs make pieces of an odd length, whose payload sum is read in two halves of
    # unequal lengths; random bytes, so that no pattern of the payload hides a wrong weight.
    _, _, _, frame = super_segment(bytes(range(256)) * 40)
    rng = random.Random(5)
    for mtu in (68 + 52 - 20, 577, 1499, 1500, 1501, 4001, 9000):
        mss = mtu - 52
        for n in (2 * mss, 3 * mss + 1, 7 * mss - 1):
            big = with_payload(frame, rng.randbytes(n))
            assert Offload(mtu).segment(big) == gso_cut(big, mtu), (mtu, n)


def ack(n: int, sport: int = 5000, flags: str = "A", sack=None, win: int = 500,
        payload: bytes = b"", seq: int = 1) -> bytes:
    opts = [("NOP", None), ("NOP", None), ("Timestamp", (n, 7))]
    if sack:
        opts += [("NOP", None), ("NOP", None), ("SAck", sack)]
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src="198.18.0.1", dst="198.18.0.2", flags="DF")
                 / TCP(sport=sport, dport=9, seq=seq, ack=n, flags=flags, window=win, options=opts)
                 / payload)


def test_ack_filtering_keeps_the_last_of_a_run_of_cumulative_acks():
    w = 0xFFFFFFFF
    run = [ack(1000), ack(2448), ack(3896, win=100)]
    assert thin_acks(run) == ([run[2]], 2)
    # Across the sequence number wrap, and flows kept apart.
    wrap = [ack(w - 100), ack(500), ack(600, sport=5001), ack(700, sport=5001)]
    assert thin_acks(wrap) == ([wrap[1], wrap[3]], 2)


def test_ack_filtering_leaves_duplicates_sack_data_and_other_flags_alone():
    dup = [ack(1000), ack(1000), ack(1000)]                # fast retransmit counts these
    assert thin_acks(dup) == (dup, 0)
    sack = [ack(1000), ack(1000, sack=(3000, 4448)), ack(2000, sack=(3000, 5896))]
    assert thin_acks(sack) == (sack, 0)
    data = [ack(1000), ack(2000, payload=b"x" * 10), ack(3000)]
    assert thin_acks(data) == (data, 0)
    for flags in ("FA", "RA", "AE", "PA"):
        other = [ack(1000), ack(2000, flags=flags), ack(3000)]
        assert thin_acks(other) == (other, 0), flags
    older = [ack(2000), ack(1000)]                        # not newer: both kept
    assert thin_acks(older) == (older, 0)
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert thin_acks([ack(1000), arp, ack(2000)]) == ([ack(1000), arp, ack(2000)], 0)


def thin_acks_oracle(frames: list[bytes]) -> tuple[list[bytes], int]:
    """RFC 3449 §5.2.1's rule written over scapy's parse of each frame."""
    out, left, last = [], 0, None
    for f in frames:
        p = Ether(f)
        pure = (IP in p and TCP in p and p[IP].ihl == 5 and p[IP].frag == 0 and not p[IP].flags.MF
                and p[TCP].flags == "A" and p[IP].len == 20 + 4 * p[TCP].dataofs
                and len(f) >= 14 + p[IP].len
                and (p[TCP].dataofs == 5 or (p[TCP].dataofs == 8 and f[54:58] == b"\x01\x01\x08\x0a")))
        if pure:
            again = IP(f[14:14 + p[IP].len])
            want = (again.chksum, again[TCP].chksum)
            del again.chksum, again[TCP].chksum
            again = IP(bytes(again))
            if (again.chksum, again[TCP].chksum) != want:      # damaged: as it came
                out.append(f)
                last = None
                continue
            flow = (p.src, p.dst, p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport, p[TCP].seq)
            a = p[TCP].ack
            if last is not None and last[0] == flow and 0 < (a - last[1]) % 2**32 < 2**31:
                out[-1] = f
                left += 1
            else:
                out.append(f)
            last = (flow, a)
            continue
        out.append(f)
        last = None
    return out, left


def test_ack_filtering_never_lets_a_damaged_or_forged_ack_push_a_good_one_out():
    good = ack(1000)
    damaged = bytearray(ack(2000))
    damaged[60] ^= 0x01                                    # the TSval: the checksum is wrong
    forged = ack(1 << 30, seq=12345)                        # right ports, wrong sequence number
    truncated = ack(3000)[:60]                              # IP says 52 bytes, 46 are here
    # The IP id one up and the window one down: both checksums wrong, by amounts that
    # cancel in any sum over the IP header and the TCP segment together.
    cancelled = bytearray(ack(4000, win=500))
    cancelled[18:20] = (int.from_bytes(cancelled[18:20], "big") + 1).to_bytes(2, "big")
    cancelled[48:50] = (499).to_bytes(2, "big")
    for later in (bytes(damaged), forged, truncated, bytes(cancelled)):
        kept, left_out = thin_acks([good, later])
        assert kept == [good, later] and left_out == 0


def test_ack_filtering_agrees_with_the_rule_over_a_parse_of_each_frame():
    rng = random.Random(3)
    for trial in range(300):
        frames, a = [], rng.randrange(2**32)
        for _ in range(rng.randrange(1, 30)):
            a = (a + rng.choice((0, 0, 1448, 2896, 5000, -100))) % 2**32
            kind = rng.random()
            if kind < 0.6:
                frames.append(ack(a, win=rng.choice((500, 501))))
            elif kind < 0.7:
                frames.append(ack(a, sport=5001))
            elif kind < 0.78:
                frames.append(ack(a, sack=(a + 1448, a + 2896)))
            elif kind < 0.84:
                frames.append(ack(a, payload=b"d" * rng.randrange(1, 40)))
            elif kind < 0.87:
                frames.append(ack(a, flags=rng.choice(("FA", "PA", "RA", "AE"))))
            elif kind < 0.9:
                frames.append(ack(a, seq=rng.choice((1, 2, 1 << 30))))   # another seq: a forgery
            elif kind < 0.93:
                f = bytearray(ack(a))                      # damaged anywhere past Ethernet
                f[rng.randrange(14, len(f))] ^= 1 << rng.randrange(8)
                frames.append(bytes(f))
            elif kind < 0.96:                              # bytes after the datagram
                frames.append(ack(a) + bytes([rng.randrange(1, 256)]) * rng.randrange(1, 5))
            else:       # no options at all (20-byte header), padded to 60 bytes on the wire
                f = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                          / IP(src="198.18.0.1", dst="198.18.0.2", flags="DF")
                          / TCP(sport=5000, dport=9, seq=1, ack=a, flags="A", window=500))
                frames.append(f + bytes(6) * rng.randrange(2))
        assert thin_acks(frames) == thin_acks_oracle(frames), trial


@pytest.mark.parametrize("sack", [True, False])
def test_a_merged_segment_above_a_hole_is_answered_as_its_pieces_would_be(sack):
    # The first of ten pieces is lost; GRO merges the nine behind it. Without SACK each piece
    # owes the sender a duplicate ACK (RFC 5681 §4.2): three of them are what starts fast
    # retransmit, so the merged segment gets nine. With SACK one ACK whose block covers all
    # nine says as much (RFC 6675 counts SACKed bytes): the merged segment gets one.
    acks = []
    for merge in (False, True):
        a, b = make_pair()
        a.tcp.gso_max = 0xFFFF - 52
        a.interfaces[0].tso = True
        c, _ = established(a, b, sack=sack)
        c.send(bytes(10 * 1448))
        big = [f for _, f in a.transmit(1000) if len(f) > 1514]
        pieces = gso_cut(big[0])[1:]                   # the first one lost
        if merge:
            for f, ok, _ in Offload(1500).coalesce(pieces):
                b.receive(f, 1000, 0, ok)
        else:
            for f in pieces:
                b.receive(f, 1000, 0)
        acks.append([TCP(f[34:]) for _, f in b.transmit(1000)])
    one_by_one, merged = acks
    assert len(one_by_one) == 9 and len({t.ack for t in one_by_one + merged}) == 1
    if sack:
        blocks = dict(merged[-1].options)["SAck"]
        assert len(merged) == 1 and blocks == dict(one_by_one[-1].options)["SAck"]
        assert blocks[1] - blocks[0] == 9 * 1448
    else:
        assert len(merged) == 9


def test_a_merged_segment_is_received_like_its_pieces():
    data = random.Random(3).randbytes(10 * 1448)
    results = []
    for merge in (False, True):
        a, b, srv, frame = super_segment(data)
        pieces = gso_cut(frame)
        if merge:
            for f, ok, _ in Offload(1500).coalesce(pieces):
                b.receive(f, 2000, 0, checksum_ok=ok)
        else:
            for f in pieces:
                b.receive(f, 2000, 0)
        acks = [f for _, f in b.transmit(2000)]
        # After the delayed-ACK timer every byte is acknowledged either way.
        acks += [f for _, f in b.transmit(2000 + 10**9)]
        last = TCP(acks[-1][34:])
        results.append((srv.recv(1 << 20), last.ack, last.window, len(acks)))
        assert b.counters.get("tcp.in_csum_errors", 0) == 0
    (got1, ack1, win1, n1), (got2, ack2, win2, n2) = results
    assert got1 == got2 == data
    assert (ack1, win1) == (ack2, win2)
    assert n2 < n1                                     # one segment, fewer ACKs


def test_a_merged_segment_of_several_full_segments_is_acknowledged_at_once():
    """RFC 5681 §4.2: an ACK for at least every second full-sized segment, so a merged
    segment holding ten of them is answered now, not after the delayed-ACK timer."""
    a, b, srv, frame = super_segment(bytes(10 * 1448))
    (merged, ok, _), = Offload(1500).coalesce(gso_cut(frame))
    b.receive(merged, 2000, 0, checksum_ok=ok)
    assert [f for _, f in b.transmit(2000)]


# -- the simulated network --------------------------------------------------------------------

def test_transfer_through_offloading_nics_is_intact_with_mtu_frames_on_the_wire():
    wire_sizes = []

    def setup(net, wire):
        wire.add_tap(lambda now, frame: wire_sizes.append(len(frame)))
    r = run_transfer(2_000_000, seed=4, offload=True, rx_hold_us=50, rate_mbps=10_000, delay_ms=0.05,
                     tcp={"sndbuf": 1 << 20, "rcvbuf": 1 << 20},
                     net_setup=setup)
    assert r.completed and r.sha256_ok
    assert max(wire_sizes) <= 1514
    sent_by_tcp = r.counters["a"]["tcp.out_segs"]
    assert sent_by_tcp * 10 < r.segments_a_to_b, (sent_by_tcp, r.segments_a_to_b)
    assert r.counters["b"]["tcp.in_segs"] * 10 < r.segments_a_to_b
    assert r.counters["b"].get("tcp.in_csum_errors", 0) == 0


def test_host_capture_shows_super_segments_the_wire_capture_frames(tmp_path):
    net = Network(seed=5)
    a = net.host("a", "198.18.0.1/24", offload=True, rx_hold_us=50)
    b = net.host("b", "198.18.0.2/24", offload=True, rx_hold_us=50)
    link = net.link(a, b, rate_mbps=10_000, delay_ms=0.05)
    net.capture(str(tmp_path / "a.pcap"), a)
    net.capture(str(tmp_path / "wire.pcap"), link)
    data = random.Random(6).randbytes(500_000)
    got = hashlib.sha256()

    async def main():
        done = net.loop.create_future()

        async def sink(reader, writer):
            while chunk := await reader.read(1 << 20):
                got.update(chunk)
            done.set_result(None)
        server = await b.start_server(sink, 5001, rcvbuf=1 << 20)
        _, writer = await a.open_connection(B_IP, 5001, sndbuf=1 << 20)
        writer.write(data)
        writer.write_eof()
        await done
        server.close()
    net.run(main(), timeout=30)
    net.close()
    assert got.hexdigest() == hashlib.sha256(data).hexdigest()

    def sizes(name):
        with PcapReader(str(tmp_path / name)) as rd:
            return [len(frame) for _, frame in rd]
    at_a, wire = sizes("a.pcap"), sizes("wire.pcap")
    assert max(at_a) > 1514 >= max(wire)
    assert len(at_a) * 5 < len(wire)


def test_offload_is_the_same_on_all_interfaces_of_a_host():
    net = Network()
    r = net.host("r", "198.18.0.1/24", offload=True)
    with pytest.raises(ValueError):
        r.add_interface("198.18.1.1/24")


# -- the lab ----------------------------------------------------------------------------------

def test_offload_lab_shows_fewer_segments_for_the_same_frames():
    off, on = dict(LABS["offload"].runs(1)).values()
    assert off.sha256_ok and on.sha256_ok
    assert off.segments_a_to_b == on.segments_a_to_b            # the same frames on the wire
    assert off.tcp("a", "tcp.out_segs") == off.segments_a_to_b
    assert on.tcp("a", "tcp.out_segs") * 10 < on.segments_a_to_b
    assert on.stack_segments * 10 < off.stack_segments
    assert on.tso_frames > 20 * on.tso_super > 0 and on.gro_merged > 0
    lesson = run_lab("offload", seed=1).split("In this run:", 1)[1]
    for figure in (off.segments_a_to_b, on.tcp("a", "tcp.out_segs"), on.tcp("b", "tcp.in_segs")):
        assert f"{figure:,}" in lesson
    assert "ms per MB" not in lesson                             # CPU time stays out of it


def test_offload_lab_with_a_host_capture_and_the_run_viewer(tmp_path, monkeypatch, capsys):
    """--pcap-at a shows what a's stack handed its NIC (super-segments with offload), and
    the run recorder passes on the NIC's checksum_ok (merged segments are not dropped)."""
    from wirestack.cli import main
    from wirestack.trace.pcapng import PcapngReader
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "offload", "-q", "--pcap-at", "a", "--pcap", "a.pcapng", "--html", "o.html"]) == 0
    out = capsys.readouterr().out
    assert out.count("sha256 ok") == 2
    sizes = {}
    for i in (1, 2):
        with PcapngReader(str(tmp_path / f"a-{i}.pcapng")) as rd:
            sizes[i] = [len(p.data) for p in rd]
    assert max(sizes[1]) <= 1514 < max(sizes[2])
    assert len(sizes[2]) * 5 < len(sizes[1])
    assert (tmp_path / "o.html").stat().st_size > 1000


def test_frames_held_for_gro_are_lost_when_the_nic_goes_down():
    _, _, _, frame = super_segment(bytes(3 * 1448))
    sched, got = Scheduler(), []
    nic = Nic(sched, "n", frame[:6], on_receive=lambda f, ok: got.append(f), offload=Offload(1500),
              rx_hold_ns=50_000)
    for p in gso_cut(frame):
        nic.deliver(p + fcs(p), 0, None)
    nic.up = False
    sched.run()
    assert got == [] and nic.counters.get("eth.rx_dropped_down") == 3
    nic.up = True
    for p in gso_cut(frame):
        nic.deliver(p + fcs(p), 0, None)
    sched.run()
    assert len(got) == 1 and len(got[0]) == 14 + 52 + 3 * 1448
