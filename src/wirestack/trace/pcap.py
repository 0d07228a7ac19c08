"""Classic libpcap capture files, written from virtual time.

File layout (the original tcpdump format, readable by Wireshark, tcpdump, scapy):

* global header, 24 bytes: magic, version 2.4, thiszone 0, sigfigs 0, snaplen, linktype;
* per packet, 16 bytes: ts_sec, ts_frac, captured length, original length; then the bytes.

The magic number tells the reader the byte order and the timestamp resolution:
0xa1b2c3d4 = microseconds, 0xa1b23c4d = nanoseconds. We always write little-endian, and
timestamps come only from the ``now`` the caller passes (virtual ns), so the same
simulation produces a byte-identical file.

Attach to a NIC or medium through its taps::

    w = PcapWriter("a.pcap")
    nic.add_tap(lambda now, direction, frame: w.write(now, frame))
    link.add_tap(w.write)
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from wirestack.units import SEC

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


class CaptureFile:
    """What every capture writer shares: a path (opened and closed here) or a binary file the
    caller owns (only flushed here), a packet count, close() once, use as a context manager."""

    def __init__(self, file_or_path, snaplen: int):
        if snaplen <= 0:
            raise ValueError("snaplen must be positive")
        if hasattr(file_or_path, "write"):
            self._f: BinaryIO = file_or_path
            self._owns = False
        else:
            self._f = open(file_or_path, "wb")
            self._owns = True
        self.snaplen = snaplen
        self.count = 0
        self.closed = False

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._owns:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PcapWriter(CaptureFile):
    """Write frames to a classic pcap file (``file_or_path``: a path or a binary file)."""

    def __init__(self, file_or_path, snaplen: int = 65535, linktype: int = LINKTYPE_ETHERNET,
                 nanosecond: bool = False):
        super().__init__(file_or_path, snaplen)
        self.linktype = linktype
        self.nanosecond = nanosecond
        self._div = 1 if nanosecond else 1000   # ns -> fraction-of-second units
        self._f.write(_GLOBAL.pack(MAGIC_NS if nanosecond else MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    def write(self, now_ns: int, frame) -> None:
        """Append one packet captured at virtual time ``now_ns`` (truncated to snaplen)."""
        if self.closed:
            raise ValueError("write to a closed PcapWriter")
        if now_ns < 0:
            raise ValueError("pcap timestamps cannot be negative")
        sec, frac = divmod(now_ns, SEC)
        n = len(frame)
        cap = n if n <= self.snaplen else self.snaplen
        f = self._f
        f.write(_RECORD.pack(sec, frac // self._div, cap, n))
        f.write(frame if cap == n else bytes(frame[:cap]))
        self.count += 1


class CaptureReader:
    """What every capture reader shares: a path (opened and closed here) or a binary file the
    caller owns (left open), use as a context manager."""

    def __init__(self, file_or_path):
        if hasattr(file_or_path, "read"):
            self._f: BinaryIO = file_or_path
            self._owns = False
        else:
            self._f = open(file_or_path, "rb")
            self._owns = True

    def close(self) -> None:
        if self._owns:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PcapReader(CaptureReader):
    """Iterate ``(ts_ns, frame_bytes)`` over a classic pcap file, either byte order, either
    timestamp resolution."""

    def __init__(self, file_or_path):
        super().__init__(file_or_path)
        head = self._f.read(24)
        if len(head) < 24:
            raise ValueError("not a pcap file: shorter than the 24-byte global header")
        for endian in "<>":
            magic = struct.unpack(endian + "I", head[:4])[0]
            if magic in (MAGIC_US, MAGIC_NS):
                break
        else:
            raise ValueError(f"not a classic pcap file (magic {head[:4].hex()})")
        self._endian = endian
        self.nanosecond = magic == MAGIC_NS
        _, self.version_major, self.version_minor, self.thiszone, _, self.snaplen, self.linktype = \
            struct.unpack(endian + "IHHiIII", head)
        self._rec = struct.Struct(endian + "IIII")
        self._mul = 1 if self.nanosecond else 1000

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        f = self._f
        rec = self._rec
        while True:
            head = f.read(16)
            if not head:
                return
            if len(head) < 16:
                raise ValueError("truncated pcap record header")
            sec, frac, cap, _orig = rec.unpack(head)
            data = f.read(cap)
            if len(data) < cap:
                raise ValueError("truncated pcap record")
            yield sec * SEC + frac * self._mul, data
