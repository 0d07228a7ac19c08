"""Segmentation and receive offload: the work a NIC takes off the stack's hands.

A host stack pays a fixed cost per packet (a header built or parsed, a lookup, a state
update, an ACK decision) on top of the cost per byte. At 1448 bytes a segment that cost is
paid ~700 times per MB. Real NICs therefore let the stack deal in segments of up to 64 KB:

- **TSO** (TCP segmentation offload; GSO is the kernel's software fallback): the driver
  hands the NIC one TCP/IPv4 datagram larger than the MTU, its headers a template. The
  NIC cuts the payload into pieces of MSS bytes (the MTU minus the IP and TCP headers),
  copies the headers onto each, advances the TCP sequence number and the IP
  identification (RFC 6864 §4.1: with DF the id has no meaning, NICs count up), sets the
  IP total length, and computes the IP and TCP checksums (the super-segment's TCP
  checksum field holds only the pseudo-header sum, which the NIC ignores here and
  recomputes). PSH and FIN go on the last piece only, CWR on the first only (what Linux's
  tcp_gso_segment does).
- **GRO/LRO** (receive offload): the frames that arrived since the last interrupt (one
  NAPI poll, at most a budget of frames) are looked at together; consecutive in-order
  data segments of one flow are merged into one larger segment with the first one's
  headers, so IP and TCP run once for all of them. The NIC checks every piece's
  checksums first and vouches for the merged result (CHECKSUM_UNNECESSARY). Merging
  stops ("flush") at anything unusual, as in Linux's tcp_gro_receive: flags other than
  ACK and PSH, a sequence gap or overlap, another ACK number or window, options whose
  bytes differ (timestamps included), IP options or fragments, a bad checksum, a piece
  longer than the first one, and after a short piece or one with PSH. Anything not merged
  is passed up as it came.

Sans-I/O: pure functions of the frames (no clock, no randomness); the NIC
(:mod:`wirestack.sim.nic`) decides when a receive batch ends.
"""

from __future__ import annotations

import struct

from ..wire.checksum import fold, internet_checksum, word_sum

_IPV4 = b"\x08\x00"
_ETH = 14
_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_LEN_ID = struct.Struct("!HH")          # IP total length and identification (offset 2)
_MAX_IP = 0xFFFF                        # the IP total length field's limit
_from_bytes = int.from_bytes


class Offload:
    """TSO and GRO for one NIC whose MTU (IP datagram size) is ``mtu``.

    ``segment(frame)`` cuts a TCP super-segment into wire frames; ``coalesce(frames)``
    merges a receive batch. Counters (attributes, as the NIC's frame totals):
    ``tso_super`` super-segments cut, ``tso_frames`` frames they became; ``gro_frames``
    frames looked at, ``gro_merged`` frames that went into a larger segment, ``gro_up``
    segments handed up, ``gro_bad_csum`` frames passed up unmerged with a bad checksum.
    """

    def __init__(self, mtu: int = 1500):
        if mtu < 68:
            raise ValueError(f"MTU {mtu} below the IPv4 minimum of 68 (RFC 791)")
        self.mtu = mtu
        self.tso_super = self.tso_frames = 0
        self.gro_frames = self.gro_merged = self.gro_up = self.gro_bad_csum = 0

    # -- transmit: TSO ----------------------------------------------------------------------

    def segment(self, frame: bytes) -> list[bytes] | None:
        """The wire frames for ``frame`` (Ethernet + IPv4 + TCP, longer than the MTU), or
        None when it is not a super-segment the NIC can cut (not TCP/IPv4, IP options, a
        fragment, a length that does not add up): the NIC then sends it as it is."""
        if frame[12:14] != _IPV4 or frame[14] != 0x45 or frame[23] != 6 or frame[20] & 0xBF or frame[21]:
            return None     # (a fragment: only DF may be set in the flags and offset)
        total = _U16.unpack_from(frame, 16)[0]
        thl = (frame[46] >> 4) * 4
        start = _ETH + 20 + thl
        mss = self.mtu - 20 - thl
        if thl < 20 or mss <= 0 or _ETH + total > len(frame) or start > _ETH + total:
            return None
        eth = frame[:_ETH]
        ip = bytearray(frame[_ETH:_ETH + 20])
        tcp = bytearray(frame[_ETH + 20:start])
        tcp[16:18] = b"\0\0"
        seq = _U32.unpack_from(tcp, 4)[0]
        flags = tcp[13]
        ident = _U16.unpack_from(ip, 4)[0]
        # The pseudo-header (RFC 9293 §3.1) minus the length, which differs per piece.
        pseudo = _from_bytes(ip[12:16], "big") + _from_bytes(ip[16:20], "big") + 6
        payload = memoryview(frame)[start:_ETH + total]
        n = len(payload)
        out = []
        for i, off in enumerate(range(0, n, mss)):
            piece = payload[off:off + mss]
            plen = len(piece)
            f = flags
            if off + mss < n:
                f &= ~(_PSH | _FIN)
            if i:
                f &= ~_CWR
            tcp[13] = f
            _U32.pack_into(tcp, 4, (seq + off) & 0xFFFFFFFF)
            tcp[16:18] = b"\0\0"
            # The header has an even length, so the words of header and piece sum apart.
            s = fold(word_sum(tcp) + word_sum(piece) + pseudo + thl + plen)
            _U16.pack_into(tcp, 16, 0xFFFF - s)
            _LEN_ID.pack_into(ip, 2, 20 + thl + plen, (ident + i) & 0xFFFF)
            ip[10:12] = b"\0\0"
            _U16.pack_into(ip, 10, internet_checksum(ip))
            out.append(b"".join((eth, ip, tcp, piece)))
        self.tso_super += 1
        self.tso_frames += len(out)
        return out

    # -- receive: GRO -----------------------------------------------------------------------

    def coalesce(self, frames: list[bytes]) -> list[tuple[bytes, bool, int]]:
        """One receive batch, in arrival order -> ``(frame, checksum_ok, first)`` to hand
        up, in order: ``first`` is the index in ``frames`` of the first frame it holds;
        ``checksum_ok`` says the NIC checked the TCP checksum of every piece."""
        out: list[tuple[bytes, bool, int]] = []
        run: list = []          # the frames being merged: (frame, payload start, end)
        run_key = b""
        run_first = nxt = size = room = 0
        open_ = False           # the run may take another piece
        for index, frame in enumerate(frames):
            self.gro_frames += 1
            info = self._data_segment(frame)
            if info is None or info[0] is None:
                if run:
                    self._flush(run, run_first, out)
                    run = []
                # Not TCP/IPv4 (or an IP header IP must judge): unchecked. A TCP segment
                # that may not merge: vouched for if its checksum is good, else the
                # stack finds and counts the error itself.
                ok = info is not None and info[1]
                if info is not None and not ok:
                    self.gro_bad_csum += 1
                out.append((frame, ok, index))
                self.gro_up += 1
                continue
            key, seq, start, end, flags = info
            plen = end - start
            if run and open_ and key == run_key and seq == nxt and plen <= size and plen <= room:
                run.append((frame, start, end))
                nxt = (seq + plen) & 0xFFFFFFFF
                room -= plen
                open_ = plen == size and not flags & _PSH
                continue
            if run:
                self._flush(run, run_first, out)
            run, run_key, run_first = [(frame, start, end)], key, index
            nxt, size = (seq + plen) & 0xFFFFFFFF, plen
            room = _MAX_IP - (start - _ETH) - plen
            open_ = not flags & _PSH
        if run:
            self._flush(run, run_first, out)
        return out

    def _data_segment(self, frame: bytes):
        """None: not a TCP/IPv4 frame GRO handles (passed up unchecked). (None, csum_ok):
        a TCP segment that must not be merged. Else (flow key, seq, payload start, end,
        flags) of a data segment with good checksums."""
        if len(frame) < _ETH + 40 or frame[12:14] != _IPV4 or frame[14] != 0x45 or frame[23] != 6:
            return None
        total = _U16.unpack_from(frame, 16)[0]
        if frame[20] & 0xBF or frame[21] or _ETH + total > len(frame) or total < 40:
            return None     # a fragment (only DF may be set) or a length that does not fit
        ip = memoryview(frame)[_ETH:_ETH + 20]
        if _from_bytes(ip, "big") % 0xFFFF:
            return None     # a bad IP header checksum: IP counts and drops it
        thl = (frame[46] >> 4) * 4
        start = _ETH + 20 + thl
        end = _ETH + total
        if thl < 20 or start > end:
            return None
        seg = memoryview(frame)[_ETH + 20:end]
        n = end - _ETH - 20
        v = word_sum(seg) + _from_bytes(ip[12:16], "big") + _from_bytes(ip[16:20], "big") + 6 + n
        if v % 0xFFFF:
            return None, False
        flags = frame[47]
        if flags & ~_PSH != _ACK or start == end:
            return None, True
        # Same flow, same ACK, window and options (TCP bytes 8-11, 14-15, 20-): Ethernet
        # and IP addresses, TOS, TTL, ports, header length.
        key = b"".join((frame[:_ETH], frame[15:16], frame[22:23], frame[26:38], frame[42:47],
                        frame[48:50], frame[_ETH + 40:start]))
        return key, _U32.unpack_from(frame, 38)[0], start, end, flags

    def _flush(self, run: list, first: int, out: list) -> None:
        self.gro_up += 1
        if len(run) == 1:
            out.append((run[0][0], True, first))
            return
        self.gro_merged += len(run)
        head, start, _ = run[0]
        body = b"".join(memoryview(f)[s:e] for f, s, e in run)
        ip = bytearray(head[_ETH:_ETH + 20])
        _U16.pack_into(ip, 2, start - _ETH + len(body))
        ip[10:12] = b"\0\0"
        _U16.pack_into(ip, 10, internet_checksum(ip))
        tcp = bytearray(head[_ETH + 20:start])
        tcp[13] |= run[-1][0][47] & _PSH        # PSH of the last piece
        # The TCP checksum field keeps the first piece's value: the NIC vouches for the
        # pieces it checked (checksum_ok), nobody reads the field of a merged segment.
        out.append((b"".join((head[:_ETH], ip, tcp, body)), True, first))
