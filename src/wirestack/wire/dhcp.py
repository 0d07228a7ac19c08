"""DHCPv4 messages (RFC 2131 §2, the BOOTP layout of RFC 951) and their options (RFC 2132).

``parse`` raises only MalformedPacket (counter ``dhcp.in_malformed``); options are kept as a
dict of code -> raw bytes, with helpers for the ones a client and server use.
"""

from __future__ import annotations

import struct

from .bytes_like import BytesLike
from .errors import MalformedPacket

SERVER_PORT = 67
CLIENT_PORT = 68
BOOTREQUEST = 1
BOOTREPLY = 2
MAGIC = b"\x63\x82\x53\x63"      # RFC 2131 §3: the options field starts with this cookie
FLAG_BROADCAST = 0x8000          # RFC 2131 §2, figure 2: "answer me by broadcast"

# Message types (option 53, RFC 2132 §9.6)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
TYPE_NAMES = {DISCOVER: "DHCPDISCOVER", OFFER: "DHCPOFFER", REQUEST: "DHCPREQUEST",
              DECLINE: "DHCPDECLINE", ACK: "DHCPACK", NAK: "DHCPNAK", RELEASE: "DHCPRELEASE",
              INFORM: "DHCPINFORM"}

# Option codes (RFC 2132)
OPT_PAD, OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS = 0, 1, 3, 6
OPT_HOSTNAME = 12
OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD, OPT_MESSAGE_TYPE, OPT_SERVER_ID = 50, 51, 52, 53, 54
OPT_PARAM_REQUEST, OPT_MESSAGE, OPT_RENEWAL_T1, OPT_REBINDING_T2, OPT_CLIENT_ID = 55, 56, 58, 59, 61
OPT_END = 255

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")   # 236 bytes before the cookie
MIN_LENGTH = 300   # RFC 951's BOOTP size: some clients and relays drop shorter messages


class DhcpMessage:
    __slots__ = ("op", "xid", "secs", "flags", "ciaddr", "yiaddr", "siaddr", "giaddr", "chaddr",
                 "options")

    def __init__(self, op: int, xid: int, chaddr: bytes, *, secs: int = 0, flags: int = 0,
                 ciaddr: bytes = b"\0\0\0\0", yiaddr: bytes = b"\0\0\0\0",
                 siaddr: bytes = b"\0\0\0\0", giaddr: bytes = b"\0\0\0\0",
                 options: dict[int, bytes] | None = None):
        self.op = op
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        self.chaddr = chaddr          # the client's MAC (6 bytes)
        self.options = options if options is not None else {}

    @property
    def type(self) -> int | None:
        v = self.options.get(OPT_MESSAGE_TYPE)
        return v[0] if v and len(v) == 1 else None

    def addr_option(self, code: int) -> bytes | None:
        """The first address of an address option (server id, requested IP, router, mask)."""
        v = self.options.get(code)
        return v[:4] if v is not None and len(v) >= 4 else None

    def addr_list(self, code: int) -> list[bytes]:
        v = self.options.get(code) or b""
        return [v[i:i + 4] for i in range(0, len(v) - len(v) % 4, 4)]

    def seconds_option(self, code: int) -> int | None:
        v = self.options.get(code)
        return int.from_bytes(v, "big") if v is not None and len(v) == 4 else None

    def __repr__(self) -> str:
        kind = self.type
        name = TYPE_NAMES.get(kind, f"type {kind}") if kind is not None else "type None"
        return (f"{name} xid 0x{self.xid:08x} chaddr {self.chaddr.hex(':')}"
                f" yiaddr {'.'.join(map(str, self.yiaddr))}")


def parse(buf: BytesLike) -> DhcpMessage:
    mv = memoryview(buf)
    if len(mv) < _FIXED.size + 4:
        raise MalformedPacket(f"DHCP message truncated: {len(mv)} bytes", "dhcp.in_malformed")
    (op, htype, hlen, _hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
     _sname, _file) = _FIXED.unpack_from(mv, 0)
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedPacket(f"BOOTP op {op}", "dhcp.in_malformed")
    if htype != 1 or hlen != 6:
        raise MalformedPacket(f"hardware type {htype}/{hlen}, not Ethernet", "dhcp.in_malformed")
    if bytes(mv[_FIXED.size:_FIXED.size + 4]) != MAGIC:
        raise MalformedPacket("no DHCP magic cookie", "dhcp.in_malformed")
    options: dict[int, bytes] = {}
    i, n = _FIXED.size + 4, len(mv)
    while i < n:
        code = mv[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= n or i + 2 + mv[i + 1] > n:
            raise MalformedPacket(f"DHCP option {code} overruns the message", "dhcp.in_malformed")
        length = mv[i + 1]
        # RFC 3396: a repeated option continues the previous one.
        options[code] = options.get(code, b"") + bytes(mv[i + 2:i + 2 + length])
        i += 2 + length
    if OPT_MESSAGE_TYPE not in options:
        raise MalformedPacket("BOOTP message without a DHCP message type", "dhcp.in_malformed")
    return DhcpMessage(op, xid, bytes(chaddr[:6]), secs=secs, flags=flags, ciaddr=ciaddr,
                       yiaddr=yiaddr, siaddr=siaddr, giaddr=giaddr, options=options)


def build(msg: DhcpMessage) -> bytes:
    parts = [_FIXED.pack(msg.op, 1, 6, 0, msg.xid, msg.secs, msg.flags, msg.ciaddr, msg.yiaddr,
                         msg.siaddr, msg.giaddr, msg.chaddr.ljust(16, b"\0"), b"", b""), MAGIC]
    # The message type first (RFC 2131 §4.1 does not require it; some parsers like it so).
    for code in sorted(msg.options, key=lambda c: c != OPT_MESSAGE_TYPE):
        value = msg.options[code]
        for off in range(0, max(len(value), 1), 255):   # RFC 3396 for long values
            chunk = value[off:off + 255]
            parts.append(bytes((code, len(chunk))) + chunk)
    parts.append(bytes((OPT_END,)))
    out = b"".join(parts)
    return out + bytes(max(0, MIN_LENGTH - len(out)))
