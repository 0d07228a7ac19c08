"""UDP (RFC 768) with the pseudo-header checksum."""

from __future__ import annotations

import struct

from .bytes_like import BytesLike
from .checksum import fold, pseudo_header_sum, word_sum
from .errors import MalformedPacket

HEADER_LEN = 8
PROTO = 17
_HDR = struct.Struct("!HHHH")


class UdpHeader:
    __slots__ = ("sport", "dport", "length", "checksum")

    def __init__(self, sport: int, dport: int, length: int, checksum: int):
        self.sport = sport
        self.dport = dport
        self.length = length
        self.checksum = checksum

    def __repr__(self) -> str:
        return f"UDP({self.sport} > {self.dport}, length {self.length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UdpHeader) and (self.sport, self.dport, self.length, self.checksum) == (
            other.sport, other.dport, other.length, other.checksum)


def parse(buf: BytesLike, src: bytes | None = None, dst: bytes | None = None,
          verify_checksum: bool = True, first_fragment: bool = False) -> tuple[UdpHeader, memoryview]:
    """Decode a UDP datagram. The checksum is verified when src/dst are given and the field
    is non-zero (zero means the sender did not compute one, RFC 768). In a ``first_fragment``
    the length field covers the whole datagram, so it may exceed the bytes present."""
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(f"UDP header truncated: {n} < 8 bytes", "udp.in_hdr_errors")
    mv = memoryview(buf)
    sport, dport, length, csum = _HDR.unpack_from(mv, 0)
    if first_fragment and length >= HEADER_LEN:
        return UdpHeader(sport, dport, length, csum), mv[HEADER_LEN:]
    if length < HEADER_LEN or length > n:
        raise MalformedPacket(f"UDP length {length} does not fit the {n}-byte datagram",
                              "udp.in_hdr_errors")
    if verify_checksum and csum and src is not None and dst is not None:
        if fold(word_sum(mv[:length]) + pseudo_header_sum(src, dst, PROTO, length)) != 0xFFFF:
            raise MalformedPacket("UDP checksum mismatch", "udp.in_csum_errors")
    return UdpHeader(sport, dport, length, csum), mv[HEADER_LEN:length]


def build(src: bytes, dst: bytes, sport: int, dport: int, payload: BytesLike = b"") -> bytes:
    length = HEADER_LEN + len(payload)
    if length > 0xFFFF:
        raise ValueError("UDP datagram longer than 65535 bytes")
    head = _HDR.pack(sport, dport, length, 0)
    body = head + bytes(payload)
    csum = 0xFFFF - fold(word_sum(body) + pseudo_header_sum(src, dst, PROTO, length))
    if csum == 0:
        csum = 0xFFFF  # zero is "no checksum" in UDP, so send all ones instead (RFC 768)
    return body[:6] + csum.to_bytes(2, "big") + body[8:]
