"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import struct

from .addr import ip_ntoa, mac_ntoa
from .bytes_like import BytesLike
from .errors import MalformedPacket

LENGTH = 28
REQUEST = 1
REPLY = 2
_FIXED = struct.Struct("!HHBBH")
_FIXED_IPV4_ETHERNET = _FIXED.pack(1, 0x0800, 6, 4, 0)[:6]


class ArpPacket:
    __slots__ = ("op", "sha", "spa", "tha", "tpa")

    def __init__(self, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes):
        self.op = op
        self.sha = sha
        self.spa = spa
        self.tha = tha
        self.tpa = tpa

    def __repr__(self) -> str:
        if self.op == REQUEST:
            return f"ARP who-has {ip_ntoa(self.tpa)} tell {ip_ntoa(self.spa)}"
        if self.op == REPLY:
            return f"ARP {ip_ntoa(self.spa)} is-at {mac_ntoa(self.sha)}"
        return f"ARP op {self.op}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArpPacket) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def build(self) -> bytes:
        return build(self.op, self.sha, self.spa, self.tha, self.tpa)


def parse(buf: BytesLike) -> ArpPacket:
    if len(buf) < LENGTH:
        raise MalformedPacket(f"ARP packet truncated: {len(buf)} < 28 bytes", "arp.in_malformed")
    mv = memoryview(buf)
    htype, ptype, hlen, plen, op = _FIXED.unpack_from(mv, 0)
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
        raise MalformedPacket(
            f"ARP for hardware {htype}/protocol 0x{ptype:04x} not supported", "arp.in_unsupported")
    return ArpPacket(op, bytes(mv[8:14]), bytes(mv[14:18]), bytes(mv[18:24]), bytes(mv[24:28]))


def build(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return b"".join((_FIXED_IPV4_ETHERNET, op.to_bytes(2, "big"), sha, spa, tha, tpa))
