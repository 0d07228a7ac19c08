"""IPv4 header (RFC 791), header checksum (RFC 1071), options kept as raw bytes."""

from __future__ import annotations

import struct
from typing import Any

from .addr import ip_ntoa
from .bytes_like import BytesLike
from .checksum import internet_checksum, word_sum, fold
from .errors import MalformedPacket

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
MIN_HEADER = 20
FLAG_DF = 0x4000
FLAG_MF = 0x2000
_HDR = struct.Struct("!BBHHHBBH4s4s")
_from_bytes = int.from_bytes
_NO_CSUM = struct.Struct("!BBHHHBB")


class IPv4Header:
    __slots__ = ("ihl", "tos", "total_length", "ident", "df", "mf", "frag_offset", "ttl",
                 "proto", "checksum", "src", "dst", "options")

    def __init__(self, ihl: int, tos: int, total_length: int, ident: int, df: bool, mf: bool,
                 frag_offset: int, ttl: int, proto: int, checksum: int, src: bytes, dst: bytes,
                 options: bytes = b""):
        self.ihl = ihl                  # header length in 32-bit words
        self.tos = tos
        self.total_length = total_length
        self.ident = ident
        self.df = df
        self.mf = mf
        self.frag_offset = frag_offset  # in bytes (the field holds it in 8-byte units)
        self.ttl = ttl
        self.proto = proto
        self.checksum = checksum
        self.src = src
        self.dst = dst
        self.options = options

    @property
    def header_length(self) -> int:
        hl: int = self.ihl * 4
        return hl

    @property
    def is_fragment(self) -> bool:
        return bool(self.mf or self.frag_offset != 0)

    def __repr__(self) -> str:
        frag = f" frag off={self.frag_offset}{' MF' if self.mf else ''}" if self.is_fragment else ""
        return (f"IPv4({ip_ntoa(self.src)} > {ip_ntoa(self.dst)}, proto {self.proto}, "
                f"len {self.total_length}, ttl {self.ttl}, id {self.ident}{' DF' if self.df else ''}{frag})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPv4Header) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


def parse(buf: BytesLike, verify_checksum: bool = True) -> tuple[IPv4Header, memoryview]:
    """Validate and decode (RFC 1122 §3.2.1): version, IHL, lengths, checksum.
    Returns (header, payload) with link-layer padding removed."""
    n = len(buf)
    if n < MIN_HEADER:
        raise MalformedPacket(f"IPv4 header truncated: {n} < 20 bytes", "ip.in_truncated")
    mv = memoryview(buf)
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _HDR.unpack_from(mv, 0)
    if vihl >> 4 != 4:
        raise MalformedPacket(f"IP version {vihl >> 4}, not 4", "ip.in_bad_version")
    ihl = vihl & 0x0F
    hl = ihl * 4
    if ihl < 5:
        raise MalformedPacket(f"IHL {ihl} < 5", "ip.in_hdr_errors")
    if total < hl:
        raise MalformedPacket(f"total length {total} < header length {hl}", "ip.in_hdr_errors")
    if total > n:
        raise MalformedPacket(f"IPv4 datagram truncated: total length {total} > {n} bytes received",
                              "ip.in_truncated")
    if verify_checksum and fold(word_sum(mv[:hl])) != 0xFFFF:
        raise MalformedPacket("IPv4 header checksum mismatch", "ip.in_bad_checksum")
    if frag & 0x8000:
        raise MalformedPacket("IPv4 reserved flag bit set", "ip.in_hdr_errors")
    options = bytes(mv[MIN_HEADER:hl]) if hl > MIN_HEADER else b""
    hdr = IPv4Header(ihl, tos, total, ident, bool(frag & FLAG_DF), bool(frag & FLAG_MF),
                     (frag & 0x1FFF) * 8, ttl, proto, csum, src, dst, options)
    return hdr, mv[hl:total]


def parse_header(buf: BytesLike) -> IPv4Header:
    """Decode just the header, without checking the checksum or that the whole datagram is
    present: for the quoted datagram of an ICMP error (RFC 792), which is cut short and
    may have been changed by routers on the way."""
    n = len(buf)
    if n < MIN_HEADER:
        raise MalformedPacket(f"IPv4 header truncated: {n} < 20 bytes", "ip.in_truncated")
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _HDR.unpack_from(buf, 0)
    hl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or hl < MIN_HEADER or hl > n:
        raise MalformedPacket("not an IPv4 header", "ip.in_hdr_errors")
    return IPv4Header(hl // 4, tos, total, ident, bool(frag & FLAG_DF), bool(frag & FLAG_MF),
                      (frag & 0x1FFF) * 8, ttl, proto, csum, src, dst, bytes(buf[MIN_HEADER:hl]))


def build_header(src: bytes, dst: bytes, proto: int, payload_len: int, ttl: int = 64,
                 ident: int = 0, df: bool = False, mf: bool = False, frag_offset: int = 0,
                 tos: int = 0, options: bytes = b"") -> bytes:
    if not options and not frag_offset and not mf:
        return build_simple_header(src, dst, proto, payload_len, ttl, ident, df, tos)
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)  # pad with EOL to a 32-bit boundary
    hl = MIN_HEADER + len(options)
    if hl > 60:
        raise ValueError("IPv4 options longer than 40 bytes")
    if frag_offset % 8 or not 0 <= frag_offset <= 0xFFF8:
        raise ValueError("fragment offset must be a multiple of 8 bytes in 0..65528")
    total = hl + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {total} bytes exceeds 65535")
    frag = (FLAG_DF if df else 0) | (FLAG_MF if mf else 0) | (frag_offset >> 3)
    head = _NO_CSUM.pack(0x40 | (hl >> 2), tos, total, ident, frag, ttl, proto)
    rest = src + dst + options
    csum = internet_checksum(head + b"\x00\x00" + rest)
    return head + csum.to_bytes(2, "big") + rest


def build_simple_header(src: bytes, dst: bytes, proto: int, payload_len: int, ttl: int = 64,
                        ident: int = 0, df: bool = False, tos: int = 0) -> bytes:
    """The common case — no options, not a fragment — on the per-segment path. The header
    checksum is summed arithmetically from the fields (the ten 16-bit words of RFC 791's
    header) instead of packing the header twice."""
    total = MIN_HEADER + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {total} bytes exceeds 65535")
    frag = FLAG_DF if df else 0
    s = _from_bytes(src, "big")
    d = _from_bytes(dst, "big")
    acc = ((0x4500 | tos) + total + ident + frag + ((ttl << 8) | proto)
           + (s >> 16) + (s & 0xFFFF) + (d >> 16) + (d & 0xFFFF))
    acc = (acc & 0xFFFF) + (acc >> 16)
    acc = (acc & 0xFFFF) + (acc >> 16)
    return _HDR.pack(0x45, tos, total, ident, frag, ttl, proto, acc ^ 0xFFFF, src, dst)


def build(src: bytes, dst: bytes, proto: int, payload: BytesLike = b"", **kw: Any) -> bytes:
    return build_header(src, dst, proto, len(payload), **kw) + bytes(payload)
