"""DNS messages (RFC 1035 §4): header, questions, resource records, names with compression.

``parse`` raises only MalformedPacket (counter ``dns.in_malformed``): label and name
lengths, pointer loops and every count are checked against the bytes present.
"""

from __future__ import annotations

import struct

from .bytes_like import BytesLike
from .errors import MalformedPacket

PORT = 53
UDP_LIMIT = 512               # RFC 1035 §4.2.1: longer answers are truncated (TC) over UDP
TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_AAAA, TYPE_OPT = 1, 2, 5, 6, 28, 41
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL",
               NXDOMAIN: "NXDOMAIN", NOTIMP: "NOTIMP", REFUSED: "REFUSED"}

_HDR = struct.Struct("!HHHHHH")
_Q = struct.Struct("!HH")
_RR = struct.Struct("!HHIH")


def _bad(reason: str) -> MalformedPacket:
    return MalformedPacket(reason, "dns.in_malformed")


class Record:
    __slots__ = ("name", "type", "cls", "ttl", "rdata")

    def __init__(self, name: str, type: int, ttl: int, rdata: bytes, cls: int = CLASS_IN):
        self.name = name
        self.type = type
        self.cls = cls
        self.ttl = ttl
        self.rdata = rdata

    @property
    def address(self) -> str | None:
        """The IPv4 address of an A record."""
        if self.type == TYPE_A and len(self.rdata) == 4:
            return ".".join(map(str, self.rdata))
        return None

    def __repr__(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.address or self.rdata.hex()}"


class DnsMessage:
    __slots__ = ("id", "qr", "opcode", "aa", "tc", "rd", "ra", "rcode", "questions", "answers",
                 "authority", "additional")

    def __init__(self, id: int, *, qr: bool = False, opcode: int = 0, aa: bool = False,
                 tc: bool = False, rd: bool = True, ra: bool = False, rcode: int = NOERROR,
                 questions: list[tuple[str, int, int]] | None = None,
                 answers: list[Record] | None = None, authority: list[Record] | None = None,
                 additional: list[Record] | None = None):
        self.id = id
        self.qr = qr
        self.opcode = opcode
        self.aa = aa
        self.tc = tc
        self.rd = rd
        self.ra = ra
        self.rcode = rcode
        self.questions: list[tuple[str, int, int]] = questions or []   # (name, type, class)
        self.answers: list[Record] = answers or []
        self.authority: list[Record] = authority or []
        self.additional: list[Record] = additional or []

    def __repr__(self) -> str:
        kind = "response" if self.qr else "query"
        return (f"DNS {kind} id {self.id} {RCODE_NAMES.get(self.rcode, self.rcode)}"
                f"{' TC' if self.tc else ''} {self.questions} {self.answers}")


def normalise(name: str) -> str:
    """Lower case, no trailing dot: names compare case-insensitively (RFC 1035 §2.3.3)."""
    return name.rstrip(".").lower()


def _read_name(mv: memoryview, off: int) -> tuple[str, int]:
    """The name at ``off`` and the offset just after it (after the first pointer, if any)."""
    labels: list[str] = []
    end = None
    jumps = 0
    total = 0
    n = len(mv)
    while True:
        if off >= n:
            raise _bad("name runs past the end of the message")
        length = mv[off]
        if length & 0xC0 == 0xC0:
            if off + 1 >= n:
                raise _bad("truncated compression pointer")
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > 32:
                raise _bad("compression pointer loop")
            target = ((length & 0x3F) << 8) | mv[off + 1]
            if target >= off:
                raise _bad("compression pointer points forward")
            off = target
            continue
        if length & 0xC0:
            raise _bad(f"label type 0x{length & 0xC0:02x} is not supported")
        if length == 0:
            break
        if off + 1 + length > n:
            raise _bad("label runs past the end of the message")
        total += length + 1
        if total > 255:
            raise _bad("name longer than 255 bytes")
        labels.append(bytes(mv[off + 1:off + 1 + length]).decode("ascii", "replace"))
        off += 1 + length
    return ".".join(labels), (end if end is not None else off + 1)


def parse(buf: BytesLike) -> DnsMessage:
    mv = memoryview(buf)
    if len(mv) < _HDR.size:
        raise _bad(f"DNS message truncated: {len(mv)} < 12 bytes")
    ident, flags, qd, an, ns, ar = _HDR.unpack_from(mv, 0)
    msg = DnsMessage(ident, qr=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF,
                     aa=bool(flags & 0x0400), tc=bool(flags & 0x0200), rd=bool(flags & 0x0100),
                     ra=bool(flags & 0x0080), rcode=flags & 0xF)
    off = _HDR.size
    if qd + an + ns + ar > len(mv):   # each entry takes at least a byte: a cheap bound
        raise _bad("more entries announced than bytes present")
    for _ in range(qd):
        name, off = _read_name(mv, off)
        if off + 4 > len(mv):
            raise _bad("question truncated")
        qtype, qclass = _Q.unpack_from(mv, off)
        off += 4
        msg.questions.append((name, qtype, qclass))
    for section, count in ((msg.answers, an), (msg.authority, ns), (msg.additional, ar)):
        for _ in range(count):
            name, off = _read_name(mv, off)
            if off + 10 > len(mv):
                raise _bad("resource record truncated")
            rtype, rclass, ttl, rdlength = _RR.unpack_from(mv, off)
            off += 10
            if off + rdlength > len(mv):
                raise _bad("resource record data truncated")
            section.append(Record(name, rtype, ttl, bytes(mv[off:off + rdlength]), rclass))
            off += rdlength
    return msg


class _Writer:
    """Builds a message, pointing repeated name suffixes at their first copy (RFC 1035 §4.1.4)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.names: dict[str, int] = {}

    def name(self, name: str) -> None:
        labels = [x for x in name.rstrip(".").split(".") if x] if name not in ("", ".") else []
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if suffix in self.names:
                self.buf += (0xC000 | self.names[suffix]).to_bytes(2, "big")
                return
            if len(self.buf) < 0x3FFF:
                self.names[suffix] = len(self.buf)
            label = labels[i].encode("ascii")
            if not 0 < len(label) < 64:
                raise ValueError(f"DNS label {labels[i]!r} must be 1-63 bytes")
            self.buf += bytes((len(label),)) + label
        self.buf += b"\0"


def build(msg: DnsMessage) -> bytes:
    w = _Writer()
    flags = ((0x8000 if msg.qr else 0) | (msg.opcode & 0xF) << 11 | (0x0400 if msg.aa else 0)
             | (0x0200 if msg.tc else 0) | (0x0100 if msg.rd else 0) | (0x0080 if msg.ra else 0)
             | (msg.rcode & 0xF))
    w.buf += _HDR.pack(msg.id, flags, len(msg.questions), len(msg.answers), len(msg.authority),
                       len(msg.additional))
    for name, qtype, qclass in msg.questions:
        w.name(name)
        w.buf += _Q.pack(qtype, qclass)
    for section in (msg.answers, msg.authority, msg.additional):
        for rr in section:
            w.name(rr.name)
            w.buf += _RR.pack(rr.type, rr.cls, rr.ttl, len(rr.rdata)) + rr.rdata
    return bytes(w.buf)


def query(ident: int, name: str, qtype: int = TYPE_A) -> bytes:
    return build(DnsMessage(ident, rd=True, questions=[(name, qtype, CLASS_IN)]))
