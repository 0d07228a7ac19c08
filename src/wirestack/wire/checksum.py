"""The Internet checksum (RFC 1071) and the CRC-32 frame check sequence (IEEE 802.3).

The Internet checksum is the 16-bit ones'-complement of the ones'-complement sum of the
data taken as 16-bit big-endian words. Because 2**16 == 1 (mod 0xFFFF), a big integer made
of those words is congruent to the sum of its words modulo 0xFFFF. So one
``int.from_bytes(data, "big") % 0xFFFF`` (done in C) replaces a Python loop over the words:
about 4 µs for 1500 bytes instead of ~20 µs. The only care needed is the ones'-complement
"negative zero": a non-zero sum that is a multiple of 0xFFFF is 0xFFFF, not 0 (RFC 1071 §1).
"""

from __future__ import annotations

import zlib

from .bytes_like import BytesLike

_from_bytes = int.from_bytes

FoldPlan = tuple[tuple[int, int], ...]
"""``fold_plan``'s steps: (k, 2**k - 1) pairs."""


def word_sum(data: BytesLike) -> int:
    """The data as one big integer whose 16-bit 'digits' are the words (odd length is padded
    with a zero byte at the end, RFC 1071 §4.1). Sums of these can be reduced later."""
    v = _from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    return v


def reduced_sum(data: BytesLike, plan: FoldPlan | None = None) -> int:
    """A small integer congruent (mod 0xFFFF) to ``word_sum(data)``, computed faster for
    segment-sized data -- the hot path's payload sum (~2.0 instead of ~2.6 µs for 1448 bytes;
    ~1.7 with a ``plan``).

    Two facts make it cheaper than ``word_sum(data) % 0xFFFF``. Read as a *little*-endian
    integer the data is congruent to its word sum times 256 (a byte-swapped word w is
    256*w mod 0xFFFF), and CPython converts little-endian faster; 256*256 == 1 (mod 0xFFFF),
    so multiplying by 256 again swaps back. An odd last byte then lands as the low byte of
    a word of weight 1, which is the zero padding of RFC 1071 §4.1 after the swap. And the
    remainder of a big integer costs one hardware division per 30 bits, so the number is
    made shorter first: without a plan the data is read as two halves (each starting at an
    even offset, so each word keeps its weight) whose sum is half as long; a ``plan`` (see
    ``fold_plan``) folds the whole number a few times instead, cheaper still where many
    pieces of one length are summed (a NIC's TSO and GRO)."""
    if plan is None:
        n = len(data)
        if n > 512:
            h = (n >> 2) << 1
            v = _from_bytes(data[:h], "little") + _from_bytes(data[h:], "little")
        else:
            v = _from_bytes(data, "little")
    else:
        v = _from_bytes(data, "little")
        for k, mask in plan:
            v = (v >> k) + (v & mask)
    return (v % 0xFFFF) << 8


def fold_plan(n: int) -> FoldPlan:
    """How ``reduced_sum`` shortens the number read from ``n`` bytes before its remainder:
    ``(k, 2**k - 1)`` steps that add its bits above k to those below. With k a multiple of
    16, 2**k == 1 (mod 0xFFFF), so the sum keeps the remainder (the RFC 1071 §2(B) folding
    of carries, done on thousands of bits at once). Each step halves the number, a shift,
    an AND and an addition being far cheaper per bit than a division; it stops at a few
    hundred bits. Correct for data of any length (a step that finds nothing above k adds
    0), fastest for ``n`` bytes; the masks are built once per plan, not per sum."""
    steps = []
    k = (n >> 2) << 4           # half of n bytes' bits, rounded down to a multiple of 16
    while k >= 512:
        steps.append((k, (1 << k) - 1))
        k = (k >> 5) << 4       # half of that, again a multiple of 16
    return tuple(steps)


def fold(v: int) -> int:
    """Reduce a word sum to the 16-bit ones'-complement sum."""
    if v == 0:
        return 0
    s = v % 0xFFFF
    return s or 0xFFFF


def internet_checksum(data: BytesLike, initial: int = 0) -> int:
    """The value to put in a checksum field that was zero while summing."""
    return 0xFFFF - fold(word_sum(data) + initial)


def verify(data: BytesLike, initial: int = 0) -> bool:
    """True when data (checksum field included) sums to 0xFFFF, i.e. the checksum is good."""
    return fold(word_sum(data) + initial) == 0xFFFF


def finish_checksum(frame: bytes, csum_start: int, csum_offset: int) -> bytes:
    """``frame`` with a checksum finished that a sender left partial (checksum offload:
    virtio-net NEEDS_CSUM, CHECKSUM_PARTIAL): the field at ``csum_start + csum_offset``
    holds the pseudo-header sum, and the checksum is the ones'-complement of the sum of
    everything from ``csum_start`` on, that field included (RFC 1071), as Linux's
    skb_checksum_help does. A frame whose offsets do not fit is returned unchanged (the
    layer above counts it)."""
    at = csum_start + csum_offset
    if csum_start >= len(frame) or at + 2 > len(frame):
        return frame
    c = internet_checksum(memoryview(frame)[csum_start:])
    if c == 0 and len(frame) >= 24 and frame[23] == 17:
        c = 0xFFFF      # RFC 768: a computed zero is sent as all ones
    return frame[:at] + c.to_bytes(2, "big") + frame[at + 2:]


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Word sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 9293 §3.1)."""
    return _from_bytes(src, "big") + _from_bytes(dst, "big") + proto + length


def fcs(frame: BytesLike) -> bytes:
    """IEEE 802.3 frame check sequence: the CRC-32 of the frame, sent least significant byte
    first. zlib's crc32 is exactly that polynomial (0x04C11DB7, reflected, init and final
    XOR 0xFFFFFFFF)."""
    return zlib.crc32(frame).to_bytes(4, "little")


# A property of this CRC: the CRC-32 of a frame *including* a correct FCS is always this
# constant (the "residue"), so the receiver checks the FCS with one crc32 call, no slicing.
FCS_RESIDUE = 0x2144DF1C


def check_fcs(frame_with_fcs: BytesLike) -> bool:
    """True when the frame (FCS included, last 4 bytes) carries a correct FCS."""
    return len(frame_with_fcs) >= 4 and zlib.crc32(frame_with_fcs) == FCS_RESIDUE
