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
- **ACK filtering** (``thin_acks``, RFC 3449 §5.2.1; the real-time runtime applies it to a
  TAP's receive batch, the simulated NIC does not): of a run of one connection's pure
  cumulative ACKs only the last goes up.

Sans-I/O: pure functions of the frames (no clock, no randomness); the NIC
(:mod:`wirestack.sim.nic`) decides when a receive batch ends.
"""

from __future__ import annotations

import struct

from ..wire.checksum import FoldPlan, fold_plan, internet_checksum, reduced_sum

_IPV4 = b"\x08\x00"
_ETH = 14
_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
# At 16, what a TSO piece sets: IP length, id, (flags, TTL, protocol), checksum, (addresses),
# TCP seq, (ack, data offset), flags, (window), checksum -- one pack for all of them.
_PIECE_FIELDS = struct.Struct("!HH4sH12sI5sB2sH")
_LEN_ID_CSUM = struct.Struct("!HH4xH")   # at 16: IP total length, id, checksum
_MAX_IP = 0xFFFF                        # the IP total length field's limit
_from_bytes = int.from_bytes
# Header bytes TSO sets per piece: IP length and id (16-20), IP checksum, TCP seq, flags, checksum.
_PER_PIECE = ((16, 20), (24, 26), (38, 42), (47, 48), (50, 52))
# The first 52 header bytes (Ethernet, IPv4 without options, TCP up to its urgent pointer)
# as a mask: 0xFF where every piece of a run must equal the first one, 0 where pieces
# differ (IP length, id and checksum, TCP seq and checksum) and in the PSH bit, which the
# last piece may add. (The urgent pointer, meaningless without URG, is left out too: see
# _header_mask.)
_MASK52 = bytes(0 if i in (16, 17, 18, 19, 24, 25, 38, 39, 40, 41, 50, 51)
                else 0xFF & ~_PSH if i == 47 else 0xFF for i in range(52))


def _header_mask(start: int) -> int:
    """``_MASK52`` extended over the TCP header's last bytes up to ``start`` -- the urgent
    pointer (bytes 52-53) left out, the options all compared -- as the little-endian
    integer GRO compares a frame's first half under."""
    return _from_bytes(_MASK52 + bytes(2) + b"\xff" * (start - 54), "little")


def _sums_ok(frame: bytes, end: int, addrs: int, plan: FoldPlan | None = None,
             vouched: bool = False) -> bool:
    """The IP header checksum and the TCP checksum (``_tcp_sum_ok``) of a TCP/IPv4 frame
    without IP options are both good -- the TCP one taken as good when the device
    ``vouched`` for it (it may hold only the pseudo-header sum: checksum offload)."""
    return (not _from_bytes(frame[_ETH:_ETH + 20], "big") % 0xFFFF
            and (vouched or _tcp_sum_ok(frame, end, addrs, plan)))


def _tcp_sum_ok(frame: bytes, end: int, addrs: int, plan: FoldPlan | None = None) -> bool:
    """The TCP checksum, with the pseudo-header (``addrs``: the sum of the addresses and the
    protocol), of a segment after a 20-byte IP header is good (``plan``: see
    ``checksum.fold_plan``)."""
    return not (reduced_sum(frame[_ETH + 20:end], plan) + addrs + end - _ETH - 20) % 0xFFFF


def _run_sums(frame: bytes, addrs: int) -> tuple[int, int]:
    """What a later frame of ``frame``'s run -- its headers equal under the run's mask, so
    equal but for IP length, id and checksum and what TCP changes -- needs to check both its
    checksums without reading its IP header or slicing its TCP segment: ``(ip_fixed,
    tcp_fixed)`` (``addrs``: the pseudo-header's addresses and protocol).

    - Its IP header is good when ``ip_fixed`` plus its total length, id and checksum is a
      multiple of 0xFFFF: ``ip_fixed`` is the sum of the other header words.
    - Its TCP checksum is then good when ``v + tcp_fixed + (end << 8)`` is, ``v`` being the
      frame up to ``end`` (its IP datagram's end) read as a little-endian number, or that
      number read in parts at even offsets and folded (``checksum.reduced_sum``). Read
      little-endian, the frame is congruent (mod 0xFFFF) to 256 times its word sum: Ethernet,
      IP -- a multiple of 0xFFFF once good, so left in -- and TCP. ``tcp_fixed`` is 256 times
      the pseudo-header's addresses less the Ethernet header, and ``end << 8`` adds the TCP
      length, end - 34. As 256 * 256 == 1 (mod 0xFFFF), 256 is invertible and the test is
      exact."""
    total, ident, ip_csum = _LEN_ID_CSUM.unpack_from(frame, 16)
    ip_fixed = _from_bytes(frame[_ETH:_ETH + 20], "big") - total - ident - ip_csum
    return ip_fixed, ((addrs - 34 - _from_bytes(frame[:_ETH], "big")) << 8) % 0xFFFF


def _mergeable(frame: bytes) -> tuple[int, int] | None:
    """(payload start, end) when ``frame``'s structure lets GRO merge it -- TCP/IPv4 without
    IP options, not a fragment, lengths that fit, flags ACK or ACK+PSH, some payload --
    checksums not looked at; else None."""
    if len(frame) < _ETH + 41 or frame[12:14] != _IPV4 or frame[14] != 0x45 or frame[23] != 6:
        return None
    if frame[20] & 0xBF or frame[21] or frame[47] & ~_PSH != _ACK:
        return None
    end = _ETH + ((frame[16] << 8) | frame[17])
    start = _ETH + 20 + (frame[46] >> 4) * 4
    if start < _ETH + 40 or end <= start or end > len(frame):
        return None
    return start, end


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
        self._plans: dict[int, FoldPlan] = {}

    def _plan(self, n: int) -> FoldPlan:
        """The checksum's ``fold_plan`` for numbers of ``n`` bytes, kept: a flow's pieces
        have one or two lengths, and GRO reads a piece as two numbers of about half a
        piece (bounded: a few plans at most)."""
        plan = self._plans.get(n)
        if plan is None:
            if len(self._plans) >= 4:
                self._plans.clear()
            plan = self._plans[n] = fold_plan(n)
        return plan

    # -- transmit: TSO ----------------------------------------------------------------------

    def segment(self, frame: bytes) -> list[bytes] | None:
        """The wire frames for ``frame`` (Ethernet + IPv4 + TCP, longer than the MTU), or
        None when it is not a super-segment the NIC can cut (not TCP/IPv4, IP options, a
        fragment, a length that does not add up): the NIC then sends it as it is.

        Per piece only what differs is computed: the headers are one template in which the
        IP length, identification and checksum and the TCP sequence number, flags and
        checksum are packed in place; both checksums start from the sum of the template's
        other words (the sum does not depend on the order of the words, RFC 1071 §2(B), so
        a changed field is added on its own) and the piece's payload is the only per-byte
        work."""
        tpl = self._template(frame)
        if tpl is None:
            return None
        hdr, start, end, mss, thl, seq, flags, ident, ip_mid, ack_off, window, addrs, ip_fixed = tpl
        n = end - start
        # ... and the pseudo-header (RFC 9293 §3.1) but for its TCP length, added per piece.
        tcp_fixed = _from_bytes(hdr[_ETH + 20:start], "big") + _from_bytes(hdr[26:34], "big") + 6 + thl
        pack = _PIECE_FIELDS.pack_into
        join = b"".join
        out: list[bytes] = []
        append = out.append
        f = flags & ~(_PSH | _FIN)      # PSH and FIN on the last piece only, CWR on the first
        ip_len = 20 + thl + mss
        ip_base, tcp_base = ip_fixed + mss, tcp_fixed + mss
        seq0 = seq - start              # a piece at frame offset pos starts at seq0 + pos
        # A full piece's payload is read as two halves, each starting at an even offset (so
        # every word keeps its weight), whose sum is folded as reduced_sum does (its
        # arithmetic, inlined: a call per piece would cost more than the halving saves).
        # The halves are slices of the frame itself: from a bytes frame (what the link layer
        # makes) a slice is one copy that int.from_bytes reads as it is, where a
        # memoryview's slice would be copied again inside it (~0.1 µs a piece); the frame
        # sent is then the header and the two halves, joined.
        h = (mss >> 2) << 1
        plan = self._plan(mss - h)
        for pos in range(start, end - mss, mss):    # every piece but the last: mss bytes
            lo, hi = frame[pos:pos + h], frame[pos + h:pos + mss]
            v = _from_bytes(lo, "little") + _from_bytes(hi, "little")
            for k, mask in plan:
                v = (v >> k) + (v & mask)
            sq = (seq0 + pos) & 0xFFFFFFFF
            pack(hdr, 16, ip_len, ident, ip_mid, 0xFFFF - ((ip_base + ident) % 0xFFFF or 0xFFFF), addrs,
                 sq, ack_off, f, window, 0xFFFF - ((tcp_base + sq + f + (v << 8)) % 0xFFFF or 0xFFFF))
            append(join((hdr, lo, hi)))
            ident = (ident + 1) & 0xFFFF
            f &= ~_CWR
        pos = start + (n - 1) // mss * mss          # the last piece: the rest, 1..mss bytes
        piece = frame[pos:end]
        plen = end - pos
        f = flags & ~_CWR
        sq = (seq0 + pos) & 0xFFFFFFFF
        pack(hdr, 16, 20 + thl + plen, ident, ip_mid, 0xFFFF - ((ip_fixed + plen + ident) % 0xFFFF or 0xFFFF),
             addrs, sq, ack_off, f, window,
             0xFFFF - ((tcp_fixed + plen + sq + f + reduced_sum(piece, self._plan(mss))) % 0xFFFF or 0xFFFF))
        append(join((hdr, piece)))
        self.tso_super += 1
        self.tso_frames += len(out)
        return out

    def segment_partial(self, frame: bytes) -> list[tuple[bytes, memoryview]] | None:
        """Like ``segment``, for a device that finishes TCP checksums itself (checksum
        offload, what a NIC driver asks for with CHECKSUM_PARTIAL): each piece as (its
        headers, its payload -- a view of ``frame``, not a copy), the IP header checksum
        done and the TCP checksum field holding the pseudo-header sum only (addresses,
        protocol, TCP length), from which the device sums the TCP header and payload. No
        payload byte is read here. None when ``segment`` would return None."""
        tpl = self._template(frame)
        if tpl is None:
            return None
        hdr, start, end, mss, thl, seq, flags, ident, ip_mid, ack_off, window, addrs, ip_fixed = tpl
        pseudo = _from_bytes(hdr[26:34], "big") + 6 + thl
        pack = _PIECE_FIELDS.pack_into
        view = memoryview(frame)
        out: list[tuple[bytes, memoryview]] = []
        append = out.append
        seq0 = seq - start
        f = flags & ~(_PSH | _FIN)      # PSH and FIN on the last piece only, CWR on the first
        for pos in range(start, end, mss):
            plen = end - pos if end - pos < mss else mss
            if pos + plen == end:
                f = flags & ~_CWR       # (never the first: there is more than one piece)
            sq = (seq0 + pos) & 0xFFFFFFFF
            pack(hdr, 16, 20 + thl + plen, ident, ip_mid, 0xFFFF - ((ip_fixed + plen + ident) % 0xFFFF or 0xFFFF),
                 addrs, sq, ack_off, f, window, (pseudo + plen) % 0xFFFF or 0xFFFF)
            append((bytes(hdr), view[pos:pos + plen]))
            ident = (ident + 1) & 0xFFFF
            f &= ~_CWR
        self.tso_super += 1
        self.tso_frames += len(out)
        return out

    def _template(self, frame: bytes):
        """What cutting ``frame`` starts from, or None when it is not a super-segment the
        NIC can cut (not TCP/IPv4, IP options, a fragment, a length that does not add up,
        nothing to cut): its headers as a bytearray with the fields each piece sets zeroed,
        where its payload starts and ends, the MSS, the TCP header length, its sequence
        number, flags and IP id, the header bytes every piece copies (IP 20-24, TCP ack to
        data offset, window, addresses and ports), and the sum of the IP header's fixed words
        (with its own length, 20 + thl, in)."""
        if frame[12:14] != _IPV4 or frame[14] != 0x45 or frame[23] != 6 or frame[20] & 0xBF or frame[21]:
            return None     # (a fragment: only DF may be set in the flags and offset)
        total = _U16.unpack_from(frame, 16)[0]
        thl = (frame[46] >> 4) * 4
        start = _ETH + 20 + thl
        mss = self.mtu - 20 - thl
        if thl < 20 or mss <= 0 or _ETH + total > len(frame) or start > _ETH + total:
            return None
        end = _ETH + total
        if end - start <= mss:
            return None     # nothing to cut
        hdr = bytearray(frame[:start])
        seq = _U32.unpack_from(hdr, 38)[0]
        flags = hdr[47]
        ident = _U16.unpack_from(hdr, 18)[0]
        ip_mid, ack_off, window = bytes(hdr[20:24]), bytes(hdr[42:47]), bytes(hdr[48:50])
        addrs = bytes(hdr[26:38])
        for a, b in _PER_PIECE:         # zero what each piece sets, then sum the rest
            hdr[a:b] = bytes(b - a)
        ip_fixed = _from_bytes(hdr[_ETH:_ETH + 20], "big") + 20 + thl
        return hdr, start, end, mss, thl, seq, flags, ident, ip_mid, ack_off, window, addrs, ip_fixed

    # -- receive: GRO -----------------------------------------------------------------------

    def coalesce(self, frames: list[bytes], vouched: bool = False) -> list[tuple[bytes, bool, int]]:
        """One receive batch, in arrival order -> ``(frame, checksum_ok, first)`` to hand
        up, in order: ``first`` is the index in ``frames`` of the first frame it holds;
        ``checksum_ok`` says the NIC checked the TCP checksum of every piece.

        A frame joins the run being merged when its headers equal the run's first one
        outside the fields that differ from piece to piece (one integer comparison), it
        is the next in sequence, and its own IP and TCP checksums are good -- each checked
        on its own: a sum over several frames would let two damaged ones cancel out.

        ``vouched``: the device vouched for the TCP checksum of every frame of the batch
        (checksum offload: a field may hold only the pseudo-header sum); then only the
        IP header checksums are checked, the headers alone are read for the comparison,
        and every frame goes up with ``checksum_ok``."""
        self.gro_frames += len(frames)
        out: list[tuple[bytes, bool, int]] = []
        run: list = []          # the run being merged: (frame, payload start, payload end)
        head = mask = start = ip_fixed = cut = tcp_fixed = 0
        run_first = nxt = size = room = 0
        open_ = False           # the run may take another piece
        plan: FoldPlan = ()     # the fold_plan of a piece's halves
        from_bytes = _from_bytes
        len_id_csum = _LEN_ID_CSUM.unpack_from
        seq_of = _U32.unpack_from
        for index, frame in enumerate(frames):
            if open_ and len(frame) > start:
                total, ident, ip_csum = len_id_csum(frame, 16)
                end = _ETH + total
                plen = end - start
                # Its checksums as _run_sums says, the IP one before any byte is read
                # (it counts only with the mask check below, ANDed with it).
                if (0 < plen <= size and plen <= room and end <= len(frame)
                        and seq_of(frame, 38)[0] == nxt
                        and not (ip_fixed + total + ident + ip_csum) % 0xFFFF):
                    # The frame up to its end read as two little-endian numbers, the second
                    # starting at an even offset past the headers (or empty, for a piece
                    # shorter than that): the first holds the headers, compared under the
                    # mask in one AND; their sum, folded as reduced_sum folds (inlined: no
                    # call per frame), is the TCP check's v.
                    c = cut if cut < end else end
                    lo = from_bytes(frame[:c], "little")
                    if lo & mask == head:
                        good = vouched      # (then cut is the payload's start: lo is headers)
                        if not good:
                            v = lo + from_bytes(frame[c:end], "little")
                            for k, m in plan:
                                v = (v >> k) + (v & m)
                            good = not (v + tcp_fixed + (end << 8)) % 0xFFFF
                        if good:
                            run.append((frame, start, end))
                            nxt = (nxt + plen) & 0xFFFFFFFF
                            room -= plen
                            open_ = plen == size and not frame[47] & _PSH
                            continue
            if run:
                self._flush(run, run_first, out)
                run = []
            info = _mergeable(frame)
            if info is not None:
                start, end = info
                addrs = from_bytes(frame[26:30], "big") + from_bytes(frame[30:34], "big") + 6
                if not _sums_ok(frame, end, addrs, None if vouched else self._plan(end - _ETH - 20), vouched):
                    info = None
            if info is None:
                # Not a data segment GRO may merge (or a damaged one): as it came -- with
                # the device's word for its checksum when it vouched for the batch.
                open_ = False
                self._pass_up(frame, index, (None, True) if vouched else self._data_segment(frame), out)
                continue
            run, run_first = [(frame, start, end)], index
            open_ = not frame[47] & _PSH
            if not open_:
                continue        # PSH: nothing may join this run, nothing to prepare
            plen = end - start
            ip_fixed, tcp_fixed = _run_sums(frame, addrs)
            mask = _header_mask(start)
            head = from_bytes(frame[:start], "little") & mask
            if vouched:
                cut, plan = start, ()
            else:
                cut = start + ((plen >> 2) << 1)
                plan = self._plan(cut)
            nxt, size = (seq_of(frame, 38)[0] + plen) & 0xFFFFFFFF, plen
            room = _MAX_IP - (start - _ETH) - plen
        if run:
            self._flush(run, run_first, out)
        return out

    def _pass_up(self, frame: bytes, index: int, info, out: list) -> None:
        """A frame that may not merge, as it came. Not TCP/IPv4 (or an IP header IP must
        judge): unchecked. A TCP segment: vouched for if its checksum is good, else the
        stack finds and counts the error itself."""
        ok = info is not None and info[1]
        if info is not None and not ok:
            self.gro_bad_csum += 1
        out.append((frame, ok, index))
        self.gro_up += 1

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
        if not _tcp_sum_ok(frame, end, _from_bytes(ip[12:16], "big") + _from_bytes(ip[16:20], "big") + 6):
            return None, False
        flags = frame[47]
        if flags & ~_PSH != _ACK or start == end:
            return None, True
        # Same flow, same ACK, window and options (TCP bytes 8-11, 14-15, 20-): Ethernet
        # and IP addresses, TOS, DF, TTL, ports, header length.
        key = b"".join((frame[:_ETH], frame[15:16], frame[20:21], frame[22:23], frame[26:38], frame[42:47],
                        frame[48:50], frame[_ETH + 40:start]))
        return key, _U32.unpack_from(frame, 38)[0], start, end, flags

    def _flush(self, run: list, first: int, out: list) -> None:
        self.gro_up += 1
        if len(run) == 1:
            out.append((run[0][0], True, first))
            return
        self.gro_merged += len(run)
        head, start, _ = run[0]
        hdr = bytearray(head[:start])
        _U16.pack_into(hdr, 16, start - _ETH + sum(e - s for _, s, e in run))
        hdr[24:26] = b"\0\0"
        _U16.pack_into(hdr, 24, internet_checksum(hdr[_ETH:_ETH + 20]))
        hdr[47] |= run[-1][0][47] & _PSH        # PSH of the last piece
        # The TCP checksum field keeps the first piece's value: the NIC vouches for the
        # pieces it checked (checksum_ok), nobody reads the field of a merged segment.
        # The headers and every piece's payload joined at once: one copy of the payload.
        out.append((b"".join([hdr] + [memoryview(f)[s:e] for f, s, e in run]), True, first))


_TS_LAYOUT = b"\x01\x01\x08\x0a"         # NOP NOP Timestamps (RFC 7323 Appendix A)
# A pure ACK's first 58 bytes (Ethernet, IPv4 without options, TCP with NOP NOP TS kind and
# length): 0xFF where the next ACK of the same connection must be equal, 0 where ACKs
# differ -- IP id and checksum, TCP ack, window, checksum and urgent pointer.
# As a little-endian integer: thin_acks reads the whole 66-byte frame that way, for the
# comparison and for its TCP checksum at once.
_ACK_MASK = _from_bytes(bytes(0 if i in (18, 19, 24, 25) or 42 <= i < 46 or 48 <= i < 54
                              else 0xFF for i in range(58)), "little")


def thin_acks(frames: list[bytes], vouched: bool = False) -> tuple[list[bytes], int]:
    """ACK filtering (RFC 3449 §5.2.1) within one receive batch: of consecutive pure ACKs of
    one connection, each acknowledging more than the one before, only the last is kept;
    returns (the frames to hand up, how many ACKs were left out).

    A cumulative ACK says everything the ACKs before it said: the newer acknowledgment,
    window (RFC 9293 §3.10.7.4 takes the window from the segment with the highest ACK)
    and timestamp. Kept as they are: anything with data or flags other than ACK (a FIN,
    RST, ECN-Echo), duplicate ACKs (the same number: they count towards fast retransmit,
    RFC 5681 §3.2), ACKs with options other than timestamps (SACK blocks carry news of their
    own), IP options and fragments. An ACK replaces the one before it only when its
    checksums are good and it carries the same sequence number, so neither a damaged frame
    nor a blind forgery (RFC 5961's attacker, who does not know the sequence numbers) can
    push a good ACK out. The sender then sees one stretch ACK where the wire carried
    several, as behind a receiver with GRO; its congestion control counts bytes (RFC 3465),
    and HyStart++ grows by up to L·SMSS per ACK (RFC 9406 §4.2). ``vouched``: the device
    vouched for every frame's TCP checksum (see ``Offload.coalesce``): only IP's is checked."""
    out: list[bytes] = []
    left_out = 0
    last_key = None     # flow and seq of out[-1] when it is a pure ACK a later one may replace
    last_ack = addrs = 0
    last_head = -1      # ... its first 58 bytes under _ACK_MASK, when it has the timestamp
    last_len = 0        # layout and is exactly its 66 bytes (else 0)
    ip_fixed = tcp_fixed = 0    # ... and its _run_sums
    len_id_csum = _LEN_ID_CSUM.unpack_from
    unpack_u32 = _U32.unpack_from
    from_bytes = _from_bytes
    for frame in frames:
        n = len(frame)
        if (n == last_len and last_key is not None
                and (v := from_bytes(frame, "little")) & _ACK_MASK == last_head):
            # The usual case, in one comparison: the same headers as the ACK before it but
            # for what changes from one ACK to the next (see _ACK_MASK).
            # Its checksums from what was read (_run_sums; ip_fixed holds its IP length and
            # tcp_fixed its end, 66: the mask compares the one, the length the other).
            ack = unpack_u32(frame, 42)[0]
            _, ident, ip_csum = len_id_csum(frame, 16)
            if (ip_fixed + ident + ip_csum) % 0xFFFF or (not vouched and (v + tcp_fixed) % 0xFFFF):
                out.append(frame)       # damaged: TCP counts it
                last_key = None
                last_len = 0
                continue
            if 0 < (ack - last_ack) & 0xFFFFFFFF < 0x80000000:
                out[-1] = frame
                left_out += 1
            else:
                out.append(frame)       # a duplicate ACK (or an older one): as it came
            last_ack = ack
            continue
        # (A pure ACK's IP datagram is at most 52 bytes long: a data segment is told apart
        # by its IP total length's first byte before anything else is looked at.)
        if (n >= _ETH + 40 and not frame[16] and frame[47] == _ACK and frame[12:14] == _IPV4
                and frame[14] == 0x45 and frame[23] == 6 and not (frame[20] & 0xBF or frame[21])):
            thl = (frame[46] >> 4) * 4
            end = _ETH + 20 + thl
            if (((frame[16] << 8) | frame[17]) == 20 + thl and n >= end
                    and (thl == 20 or (thl == 32 and frame[54:58] == _TS_LAYOUT))):
                key = frame[:12] + frame[26:42]     # MACs, addresses, ports and seq
                ack = unpack_u32(frame, 42)[0]
                addrs = from_bytes(frame[26:30], "big") + from_bytes(frame[30:34], "big") + 6
                if not _sums_ok(frame, end, addrs, vouched=vouched):
                    out.append(frame)           # damaged: TCP counts it
                    last_key = None
                    last_len = 0
                    continue
                if key == last_key and 0 < (ack - last_ack) & 0xFFFFFFFF < 0x80000000:
                    out[-1] = frame
                    left_out += 1
                else:
                    out.append(frame)
                    last_key = key
                last_ack = ack
                if thl == 32 and n == end:
                    last_head, last_len = from_bytes(frame, "little") & _ACK_MASK, n
                    ip_fixed, tcp_fixed = _run_sums(frame, addrs)
                    ip_fixed += n - _ETH        # every later ACK has this IP length
                    tcp_fixed += n << 8         # ... and ends where this one does
                else:
                    last_len = 0
                continue
        out.append(frame)
        last_key = None
        last_len = 0
    return out, left_out
