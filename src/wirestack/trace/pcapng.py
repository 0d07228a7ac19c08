"""pcapng capture files, written from virtual time, with a comment per packet.

pcapng (the format Wireshark saves by default) is a sequence of blocks; each block is
``type (u32), total length (u32), body, total length again``, padded to 4 bytes. We write
three kinds (IETF draft-ietf-opsawg-pcapng, §4):

* Section Header Block (0x0A0D0D0A): byte-order magic 0x1A2B3C4D, version 1.0, section
  length -1 (unknown: we stream);
* Interface Description Block (1): link type, snaplen, and options ``if_name`` (2) and
  ``if_tsresol`` (9) = 9, so timestamps count nanoseconds;
* Enhanced Packet Block (6): interface id, 64-bit timestamp split high/low, captured and
  original length, the bytes, and options ``opt_comment`` (1, UTF-8 text shown by
  Wireshark as the packet comment, ``frame.comment`` in tshark) and ``epb_flags`` (2: bits
  0-1 = direction, 1 inbound, 2 outbound).

Everything is little-endian and comes from the caller's ``now`` (virtual ns), so the same
simulation gives a byte-identical file.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

from .pcap import LINKTYPE_ETHERNET, CaptureFile, CaptureReader

SHB = 0x0A0D0D0A
IDB = 0x00000001
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_TSRESOL = 9
EPB_FLAGS = 2
DIRECTION = {None: 0, "rx": 1, "tx": 2}   # epb_flags bits 0-1: inbound = 1, outbound = 2

_U32 = struct.Struct("<I")
_BLOCK_HEAD = struct.Struct("<II")
_EPB = struct.Struct("<IIIII")
_OPT = struct.Struct("<HH")


def _pad(n: int) -> int:
    return -n & 3


def _option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value + bytes(_pad(len(value)))


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return _BLOCK_HEAD.pack(btype, total) + body + _U32.pack(total)


class PcapngWriter(CaptureFile):
    """Write packets to a pcapng file (``file_or_path``: a path or a binary file).

    ``interfaces`` names the capture points (one Interface Description Block each);
    ``write(now, frame, comment=..., interface=..., direction=...)`` appends one packet."""

    def __init__(self, file_or_path, interfaces: list[str] | tuple[str, ...] = ("wire",),
                 snaplen: int = 65535, linktype: int = LINKTYPE_ETHERNET):
        if not interfaces:
            raise ValueError("at least one interface")
        super().__init__(file_or_path, snaplen)
        self.interfaces = list(interfaces)
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _OPT.pack(OPT_END, 0)
        out = [_block(SHB, shb)]
        for name in self.interfaces:
            opts = (_option(IF_NAME, name.encode()) + _option(IF_TSRESOL, b"\x09")
                    + _OPT.pack(OPT_END, 0))
            out.append(_block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts))
        self._f.write(b"".join(out))

    def write(self, now_ns: int, frame, comment: str | None = None, interface: int = 0,
              direction: str | None = None) -> None:
        """Append one packet captured at virtual time ``now_ns`` (ns)."""
        if self.closed:
            raise ValueError("write to a closed PcapngWriter")
        if now_ns < 0:
            raise ValueError("pcapng timestamps cannot be negative")
        if not 0 <= interface < len(self.interfaces):
            raise ValueError(f"no interface {interface}")
        n = len(frame)
        cap = n if n <= self.snaplen else self.snaplen
        data = bytes(frame[:cap])
        opts = b""
        if comment:
            opts += _option(OPT_COMMENT, comment.encode())
        flags = DIRECTION[direction]
        if flags:
            opts += _option(EPB_FLAGS, _U32.pack(flags))
        if opts:
            opts += _OPT.pack(OPT_END, 0)
        body = (_EPB.pack(interface, now_ns >> 32, now_ns & 0xFFFFFFFF, cap, n) + data
                + bytes(_pad(cap)) + opts)
        self._f.write(_block(EPB, body))
        self.count += 1


class Packet(NamedTuple):
    ts: int            # ns
    data: bytes
    interface: int
    comment: str | None
    direction: str | None


class PcapngReader(CaptureReader):
    """Iterate the Enhanced Packet Blocks of a little-endian pcapng file written with
    nanosecond (or the default microsecond) timestamps: :class:`Packet` tuples. Blocks of
    other types are skipped."""

    def __init__(self, file_or_path):
        super().__init__(file_or_path)
        self.interfaces: list[str] = []
        self._resol: list[int] = []

    def __iter__(self) -> Iterator[Packet]:
        f = self._f
        first = True
        while True:
            head = f.read(8)
            if not head:
                return
            if len(head) < 8:
                raise ValueError("truncated pcapng block header")
            btype, total = _BLOCK_HEAD.unpack(head)
            if first and btype != SHB:
                raise ValueError("not a pcapng file (no section header block)")
            first = False
            if total < 12 or total % 4:
                raise ValueError(f"bad pcapng block length {total}")
            body = f.read(total - 8)
            if len(body) < total - 8:
                raise ValueError("truncated pcapng block")
            body = body[:-4]
            if btype == SHB:
                if _U32.unpack_from(body)[0] != BYTE_ORDER_MAGIC:
                    raise ValueError("only little-endian pcapng is read here")
            elif btype == IDB:
                named = dict(self._options(body, 8))
                self.interfaces.append(named.get(IF_NAME, b"").decode(errors="replace"))
                resol = named.get(IF_TSRESOL, b"\x06")[0]
                self._resol.append(10 ** (resol & 0x7F) if not resol & 0x80 else 2 ** (resol & 0x7F))
            elif btype == EPB:
                iface, hi, lo, cap, _orig = _EPB.unpack_from(body)
                data = body[20:20 + cap]
                opts = self._options(body, 20 + cap + _pad(cap))
                comment: str | None = None
                direction: str | None = None
                for code, value in opts:
                    if code == OPT_COMMENT:
                        comment = value.decode(errors="replace")
                    elif code == EPB_FLAGS:
                        direction = {1: "rx", 2: "tx"}.get(_U32.unpack(value)[0] & 3)
                units = (hi << 32) | lo
                per_sec = self._resol[iface] if iface < len(self._resol) else 1_000_000
                yield Packet(units * 1_000_000_000 // per_sec, data, iface, comment, direction)

    @staticmethod
    def _options(body: bytes, off: int) -> list[tuple[int, bytes]]:
        out = []
        while off + 4 <= len(body):
            code, n = _OPT.unpack_from(body, off)
            if code == OPT_END:
                break
            out.append((code, body[off + 4:off + 4 + n]))
            off += 4 + n + _pad(n)
        return out
