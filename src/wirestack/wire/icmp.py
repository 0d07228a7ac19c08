"""ICMPv4 (RFC 792): echo, destination unreachable (incl. fragmentation needed, RFC 1191),
time exceeded, with the quoted datagram of error messages."""

from __future__ import annotations

import struct

from typing import TYPE_CHECKING

from .bytes_like import BytesLike
from .checksum import internet_checksum, verify
from .errors import MalformedPacket

if TYPE_CHECKING:
    from .ipv4 import IPv4Header

ECHO_REPLY = 0
DEST_UNREACHABLE = 3
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12

# Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1)
NET_UNREACHABLE = 0
HOST_UNREACHABLE = 1
PROTO_UNREACHABLE = 2
PORT_UNREACHABLE = 3
FRAG_NEEDED = 4
# Time exceeded codes
TTL_EXCEEDED = 0
REASSEMBLY_TIME_EXCEEDED = 1

ERROR_TYPES = frozenset({DEST_UNREACHABLE, TIME_EXCEEDED, PARAMETER_PROBLEM})
_HDR = struct.Struct("!BBH4s")
_IDSEQ = struct.Struct("!HH")
_MTU = struct.Struct("!HH")

NAMES = {ECHO_REPLY: "echo reply", ECHO_REQUEST: "echo request",
         DEST_UNREACHABLE: "destination unreachable", TIME_EXCEEDED: "time exceeded",
         PARAMETER_PROBLEM: "parameter problem"}
UNREACH_NAMES = {NET_UNREACHABLE: "net unreachable", HOST_UNREACHABLE: "host unreachable",
                 PROTO_UNREACHABLE: "protocol unreachable", PORT_UNREACHABLE: "port unreachable",
                 FRAG_NEEDED: "fragmentation needed"}


class IcmpMessage:
    __slots__ = ("type", "code", "checksum", "rest", "payload")

    def __init__(self, type: int, code: int, checksum: int, rest: bytes, payload: BytesLike):
        self.type = type
        self.code = code
        self.checksum = checksum
        self.rest = rest          # the 4 type-specific bytes after the checksum
        self.payload = payload    # echo data, or the quoted datagram of an error

    @property
    def ident(self) -> int:
        ident: int = _IDSEQ.unpack(self.rest)[0]
        return ident

    @property
    def seq(self) -> int:
        seq: int = _IDSEQ.unpack(self.rest)[1]
        return seq

    @property
    def next_hop_mtu(self) -> int:
        """Fragmentation needed (type 3 code 4) carries the next-hop MTU (RFC 1191 §4)."""
        mtu: int = _MTU.unpack(self.rest)[1]
        return mtu

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    def quoted(self) -> tuple[IPv4Header, memoryview]:
        """The quoted IP header and first bytes of the offending datagram, decoded without
        checksum verification (routers may have changed the TTL; only 8 bytes of transport
        follow). Returns (IPv4Header, transport_bytes) or raises MalformedPacket."""
        if not self.is_error:
            raise MalformedPacket("not an ICMP error message", "icmp.in_malformed")
        from .ipv4 import parse_header
        try:
            hdr = parse_header(self.payload)
        except MalformedPacket as exc:
            raise MalformedPacket(f"quoted datagram: {exc.reason}", "icmp.in_malformed") from None
        return hdr, memoryview(self.payload)[hdr.header_length:]

    def __repr__(self) -> str:
        name = NAMES.get(self.type, f"type {self.type}")
        if self.type in (ECHO_REQUEST, ECHO_REPLY):
            return f"ICMP {name}, id {self.ident}, seq {self.seq}, length {len(self.payload)}"
        if self.type == DEST_UNREACHABLE:
            return f"ICMP {UNREACH_NAMES.get(self.code, f'unreachable code {self.code}')}"
        return f"ICMP {name} code {self.code}"


def parse(buf: BytesLike, verify_checksum: bool = True) -> IcmpMessage:
    if len(buf) < 8:
        raise MalformedPacket(f"ICMP message truncated: {len(buf)} < 8 bytes", "icmp.in_malformed")
    mv = memoryview(buf)
    if verify_checksum and not verify(mv):
        raise MalformedPacket("ICMP checksum mismatch", "icmp.in_csum_errors")
    type_, code, csum, rest = _HDR.unpack_from(mv, 0)
    return IcmpMessage(type_, code, csum, rest, mv[8:])


def build(type: int, code: int, rest: bytes = b"\x00\x00\x00\x00", payload: BytesLike = b"") -> bytes:
    body = bytes([type, code]) + b"\x00\x00" + rest + bytes(payload)
    csum = internet_checksum(body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


def build_echo(request: bool, ident: int, seq: int, payload: BytesLike = b"") -> bytes:
    return build(ECHO_REQUEST if request else ECHO_REPLY, 0, _IDSEQ.pack(ident, seq), payload)


def build_error(type: int, code: int, offending_datagram: BytesLike, next_hop_mtu: int = 0) -> bytes:
    """An error quoting the offending IP header plus the first 8 bytes of its data
    (RFC 792; RFC 1122 §3.2.2 allows more, we keep the classic 8)."""
    data = bytes(offending_datagram)
    hl = (data[0] & 0x0F) * 4 if data else 20
    quoted = data[: hl + 8]
    rest = _MTU.pack(0, next_hop_mtu) if (type == DEST_UNREACHABLE and code == FRAG_NEEDED) else b"\x00" * 4
    return build(type, code, rest, quoted)
