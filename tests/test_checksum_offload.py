"""The checksum offloaded alone (``serve --offload csum``; sim/offload.py): the software cut
leaves each piece's TCP checksum for the device to finish, and GRO and ACK filtering take
the device's word for the checksums it vouched for -- IP's still checked. Frames stay
wire-size; a finished piece is byte for byte what TSO would have sent."""

from __future__ import annotations

import random

from test_offload import gso_cut
from test_sim_offload import ack, super_segment, with_payload

from wirestack.sim.offload import Offload, thin_acks
from wirestack.wire.checksum import finish_checksum, internet_checksum


def partial_frames(big: bytes, mtu: int = 1500) -> list[bytes]:
    """The pieces of ``big`` as a device with checksum offload hands them over: TCP
    checksum field holding the pseudo-header sum only."""
    return [h + bytes(p) for h, p in Offload(mtu).segment_partial(big)]


def test_partial_pieces_finished_by_the_device_are_the_frames_tso_sends():
    _, _, _, frame = super_segment(bytes(range(256)) * 40)
    rng = random.Random(3)
    for mtu in (577, 1500, 1501, 9000):
        mss = mtu - 52
        for n, flags in ((2 * mss, 0x10), (3 * mss + 1, 0x19), (mss + 1, 0x98), (7 * mss - 1, 0x11)):
            big = with_payload(frame, rng.randbytes(n), flags)
            pieces = Offload(mtu).segment_partial(big)
            finished = [finish_checksum(h + p, 34, 16) for h, p in pieces]
            assert finished == gso_cut(big, mtu), (mtu, n, flags)     # an independent cut
            for h, p in pieces:
                assert p.obj is big                  # the payload is a view, not a copy
                # What the device is left to do: the checksum of the TCP segment, with the
                # field holding the pseudo-header sum (RFC 9293 §3.1) it starts from.
                tcp_len = len(h) - 34 + len(p)
                pseudo = int.from_bytes(h[26:30], "big") + int.from_bytes(h[30:34], "big") + 6 + tcp_len
                assert int.from_bytes(h[50:52], "big") % 0xFFFF == pseudo % 0xFFFF
                assert internet_checksum(h[14:34]) == 0              # the IP header is done


def test_partial_cut_leaves_alone_what_tso_leaves_alone():
    off = Offload(1500)
    udp = bytes(12) + b"\x08\x00" + b"\x45" + bytes(8) + b"\x11" + bytes(3000)
    _, _, _, frame = super_segment(bytes(20 * 1448))
    small = with_payload(frame, bytes(1448))
    assert off.segment_partial(udp) is None and off.segment_partial(small) is None
    assert off.tso_super == 0


def test_gro_takes_the_devices_word_for_the_checksums_it_vouched_for():
    _, _, _, frame = super_segment(bytes(range(256)) * 40)
    big = with_payload(frame, random.Random(4).randbytes(10 * 1448))
    pieces = partial_frames(big)
    vouched = Offload(1500)
    (merged, ok, first), = vouched.coalesce(pieces, vouched=True)
    assert ok and first == 0 and vouched.gro_merged == len(pieces)
    assert merged[66:] == big[66:]
    # Not vouched for, the same frames fail their TCP check: none merged, none vouched for.
    checked = Offload(1500)
    out = checked.coalesce(pieces)
    assert [(f, ok) for f, ok, _ in out] == [(p, False) for p in pieces]
    assert checked.gro_bad_csum == len(pieces)


def test_gro_still_checks_the_ip_header_of_vouched_frames():
    _, _, _, frame = super_segment(bytes(range(256)) * 40)
    pieces = partial_frames(with_payload(frame, random.Random(6).randbytes(6 * 1448)))
    damaged = bytearray(pieces[3])
    damaged[24] ^= 0x40                              # the IP header checksum
    pieces[3] = bytes(damaged)
    out = Offload(1500).coalesce(pieces, vouched=True)
    # The run stops before it; it goes up alone (IP drops it); the rest merge again.
    assert [first for _, _, first in out] == [0, 3, 4]
    assert out[1][0] == pieces[3]
    assert [len(f) for f, _, _ in out] == [66 + 3 * 1448, len(pieces[3]), 66 + 2 * 1448]


def with_pseudo_sum(frame: bytes) -> bytes:
    """An ACK as the kernel hands it over with checksum offload: the TCP checksum field
    holding the pseudo-header sum, not the checksum."""
    f = bytearray(frame)
    ps = int.from_bytes(f[26:30], "big") + int.from_bytes(f[30:34], "big") + 6 + len(f) - 34
    f[50:52] = (ps % 0xFFFF or 0xFFFF).to_bytes(2, "big")
    return bytes(f)


def test_ack_filtering_takes_the_devices_word_for_the_checksums_it_vouched_for():
    run = [with_pseudo_sum(ack(n)) for n in (1000, 2448, 3896)]
    assert thin_acks(run, vouched=True) == ([run[2]], 2)
    assert thin_acks(run) == (run, 0)                # checked: each one fails, as it came
    damaged = bytearray(run[1])
    damaged[24] ^= 0x01                              # the IP header checksum still counts
    mixed = [run[0], bytes(damaged), run[2]]
    assert thin_acks(mixed, vouched=True) == ([run[0], bytes(damaged), run[2]], 0)
