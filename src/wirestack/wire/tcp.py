"""TCP header and options (RFC 9293 §3.1, §3.2; MSS RFC 9293 §3.7.1; window scale and
timestamps RFC 7323; SACK RFC 2018)."""

from __future__ import annotations

import struct

from .bytes_like import BytesLike
from .checksum import fold, pseudo_header_sum, reduced_sum, word_sum
from .errors import MalformedPacket

PROTO = 6
MIN_HEADER = 20
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
FLAG_LETTERS = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W"))

OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_PERMITTED, OPT_SACK, OPT_TIMESTAMP = 0, 1, 2, 3, 4, 5, 8

_HDR = struct.Struct("!HHIIHHHH")
_PORTS_SEQ = struct.Struct("!HHI")
_TS = struct.Struct("!II")
_TS_ALIGNED = b"\x01\x01\x08\x0a"  # NOP NOP TS len 10: what every stack sends on data segments
_TSOPT = struct.Struct("!III")       # that word, TSval, TSecr (RFC 7323 Appendix A layout)
_TSOPT_HEAD = 0x0101080A
_TSOPT_WORDS = 0x0101 + 0x080A       # the first word's contribution to the checksum
_MSS = struct.Struct("!BBH")
# The options of nearly every SYN and SYN,ACK (Linux's and ours, see encode_options): MSS,
# SACK-permitted + TS, NOP + window scale, 20 bytes handled with one pack/unpack.
_SYN_LAYOUT = struct.Struct("!BBHIIIBBBB")
_SYN_SACK_TS = 0x0402080A     # SACK-permitted (kind 4, len 2), then the TS kind and length
_MASK32 = 0xFFFFFFFF
_from_bytes = int.from_bytes


class TcpOptions:
    """Decoded options. Absent ones are None / False / empty. Unknown options are kept as
    (kind, data) pairs so they can be shown and re-encoded."""

    __slots__ = ("mss", "wscale", "sack_permitted", "sack_blocks", "ts_val", "ts_ecr", "unknown")

    def __init__(self, mss: int | None = None, wscale: int | None = None,
                 sack_permitted: bool = False, sack_blocks: tuple[tuple[int, int], ...] = (),
                 ts_val: int | None = None, ts_ecr: int | None = None,
                 unknown: tuple[tuple[int, bytes], ...] = ()):
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks  # tuple of (left, right) sequence numbers
        self.ts_val = ts_val            # None when no timestamp option
        self.ts_ecr = ts_ecr
        self.unknown = unknown

    @property
    def has_ts(self) -> bool:
        return self.ts_val is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TcpOptions) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "<" + ",".join(describe_options(self)) + ">"

    def encode(self) -> bytes:
        out = encode_options(mss=self.mss, wscale=self.wscale, sack_permitted=self.sack_permitted,
                             # an absent echo is sent as 0 (RFC 7323 §3.2)
                             ts=(self.ts_val, self.ts_ecr or 0) if self.ts_val is not None else None,
                             sack_blocks=self.sack_blocks)
        for kind, data in self.unknown:
            out += bytes([kind, len(data) + 2]) + data
        out = _pad4(out)
        if len(out) > 40:
            raise ValueError(f"TCP options of {len(out)} bytes exceed the 40-byte limit")
        return out


NO_OPTIONS = TcpOptions()


def describe_options(o: TcpOptions) -> list[str]:
    """Options in tcpdump's words: mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7."""
    parts = []
    if o.mss is not None:
        parts.append(f"mss {o.mss}")
    if o.sack_permitted:
        parts.append("sackOK")
    if o.ts_val is not None:
        parts.append(f"TS val {o.ts_val} ecr {o.ts_ecr}")
    if o.wscale is not None:
        parts.append(f"wscale {o.wscale}")
    if o.sack_blocks:
        parts.append("sack %d %s" % (len(o.sack_blocks), " ".join(f"{{{l}:{r}}}" for l, r in o.sack_blocks)))
    for kind, data in o.unknown:
        parts.append(f"opt-{kind}:{bytes(data).hex()}")
    return parts


class TcpHeader:
    __slots__ = ("sport", "dport", "seq", "ack", "header_length", "flags", "window", "checksum",
                 "urgent", "options")

    def __init__(self, sport: int, dport: int, seq: int, ack: int, header_length: int,
                 flags: int, window: int, checksum: int, urgent: int,
                 options: TcpOptions = NO_OPTIONS):
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.header_length = header_length
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgent = urgent
        self.options = options

    syn = property(lambda self: bool(self.flags & SYN))
    fin = property(lambda self: bool(self.flags & FIN))
    rst = property(lambda self: bool(self.flags & RST))
    psh = property(lambda self: bool(self.flags & PSH))
    urg = property(lambda self: bool(self.flags & URG))
    ece = property(lambda self: bool(self.flags & ECE))
    cwr = property(lambda self: bool(self.flags & CWR))

    @property
    def ack_flag(self) -> bool:
        return bool(self.flags & ACK)

    @property
    def flag_string(self) -> str:
        return flag_string(self.flags)

    def __repr__(self) -> str:
        return (f"TCP({self.sport} > {self.dport} [{self.flag_string}] seq {self.seq} ack {self.ack} "
                f"win {self.window} {self.options!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TcpHeader) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


def flag_string(flags: int) -> str:
    """tcpdump's flag letters: S F R P U E W, and '.' for ACK."""
    s = "".join(letter for bit, letter in FLAG_LETTERS if flags & bit)
    if flags & ACK:
        s += "."
    return s or "none"


def parse_options(data: BytesLike) -> TcpOptions:
    """Decode the option bytes (RFC 9293 §3.2). A length field that is < 2 or runs past the
    header is malformed (the segment is dropped); a known option with the wrong length is
    kept as unknown and so ignored, as Linux does."""
    n = len(data)
    if n == 12 and data[:4] == _TS_ALIGNED:  # fast path: the usual data segment
        val, ecr = _TS.unpack_from(data, 4)
        return TcpOptions(ts_val=val, ts_ecr=ecr)
    if n == 20:   # fast path: the usual SYN (_SYN_LAYOUT)
        mkind, mlen, seg_mss, sack_ts, val, ecr, nop, wkind, wlen, shift = _SYN_LAYOUT.unpack_from(data)
        if (mkind == OPT_MSS and mlen == 4 and sack_ts == _SYN_SACK_TS and nop == OPT_NOP
                and wkind == OPT_WSCALE and wlen == 3):
            return TcpOptions(seg_mss, shift, True, (), val, ecr)
    mss: int | None = None
    wscale: int | None = None
    ts_val: int | None = None
    ts_ecr: int | None = None
    sack_ok = False
    blocks: tuple[tuple[int, int], ...] = ()
    unknown: list[tuple[int, bytes]] = []
    i = 0
    while i < n:
        kind = data[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise MalformedPacket(f"TCP option {kind} has no length byte", "tcp.in_bad_options")
        length = data[i + 1]
        if length < 2 or i + length > n:
            raise MalformedPacket(f"TCP option {kind} has bad length {length}", "tcp.in_bad_options")
        body = data[i + 2:i + length]
        if kind == OPT_MSS and length == 4:
            mss = int.from_bytes(body, "big")
        elif kind == OPT_WSCALE and length == 3:
            wscale = body[0]
        elif kind == OPT_SACK_PERMITTED and length == 2:
            sack_ok = True
        elif kind == OPT_TIMESTAMP and length == 10:
            ts_val, ts_ecr = _TS.unpack_from(body, 0)
        elif kind == OPT_SACK and length >= 10 and (length - 2) % 8 == 0:
            blocks = tuple(struct.unpack_from("!II", body, j) for j in range(0, length - 2, 8))
        else:
            unknown.append((kind, bytes(body)))
        i += length
    return TcpOptions(mss, wscale, sack_ok, blocks, ts_val, ts_ecr, tuple(unknown))


def parse(buf: BytesLike, src: bytes | None = None, dst: bytes | None = None,
          verify_checksum: bool = True) -> tuple[TcpHeader, memoryview]:
    """Decode a TCP segment; with src/dst verify the pseudo-header checksum."""
    n = len(buf)
    if n < MIN_HEADER:
        raise MalformedPacket(f"TCP header truncated: {n} < 20 bytes", "tcp.in_hdr_errors")
    mv = memoryview(buf)
    sport, dport, seq, ack, off_flags, window, csum, urgent = _HDR.unpack_from(mv, 0)
    hl = (off_flags >> 12) * 4
    if hl < MIN_HEADER or hl > n:
        raise MalformedPacket(f"TCP data offset {hl} bytes does not fit the {n}-byte segment",
                              "tcp.in_hdr_errors")
    if verify_checksum and src is not None and dst is not None:
        if fold(word_sum(mv) + pseudo_header_sum(src, dst, PROTO, n)) != 0xFFFF:
            raise MalformedPacket("TCP checksum mismatch", "tcp.in_csum_errors")
    options = parse_options(mv[MIN_HEADER:hl]) if hl > MIN_HEADER else NO_OPTIONS
    return (TcpHeader(sport, dport, seq, ack, hl, off_flags & 0xFF, window, csum, urgent, options),
            mv[hl:])


def _pad4(options: bytes) -> bytes:
    if len(options) % 4:
        options += b"\x00" * (4 - len(options) % 4)  # EOL padding
    return options


def encode_options(mss: int | None = None, wscale: int | None = None, sack_permitted: bool = False,
                   ts: tuple[int, int] | None = None,
                   sack_blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]] = ()) -> bytes:
    """Encode options in the 32-bit aligned layout Linux uses, so they read well in a trace:
    MSS; SACK-permitted+TS (or NOP NOP TS); NOP + window scale; NOP NOP + SACK blocks."""
    if mss is not None and ts is not None and sack_permitted and wscale is not None \
            and not sack_blocks:
        # The usual SYN / SYN,ACK: all four, packed at once.
        return _SYN_LAYOUT.pack(OPT_MSS, 4, mss, _SYN_SACK_TS, ts[0] & _MASK32, ts[1] & _MASK32,
                                OPT_NOP, OPT_WSCALE, 3, wscale)
    out = []
    if mss is not None:
        out.append(_MSS.pack(OPT_MSS, 4, mss))
    if ts is not None:
        if sack_permitted:
            out.append(b"\x04\x02\x08\x0a")
        else:
            out.append(_TS_ALIGNED)
        out.append(_TS.pack(ts[0] & 0xFFFFFFFF, ts[1] & 0xFFFFFFFF))
    elif sack_permitted:
        out.append(b"\x01\x01\x04\x02")
    if wscale is not None:
        out.append(bytes((OPT_NOP, OPT_WSCALE, 3, wscale)))
    if sack_blocks:
        out.append(bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(sack_blocks))))
        for left, right in sack_blocks:
            out.append(_TS.pack(left & 0xFFFFFFFF, right & 0xFFFFFFFF))
    opts = b"".join(out)
    if len(opts) > 40:
        raise ValueError(f"TCP options of {len(opts)} bytes exceed the 40-byte limit")
    return _pad4(opts)


def build(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
          window: int, payload: BytesLike = b"", options: bytes = b"", urgent: int = 0) -> bytes:
    """A complete segment with its checksum. ``options`` must be 32-bit aligned
    (use :func:`encode_options`)."""
    if len(options) % 4 or len(options) > 40:
        raise ValueError(f"TCP options must be 32-bit aligned and at most 40 bytes, not {len(options)}")
    hl = MIN_HEADER + len(options)
    off_flags = (hl << 10) | flags  # (hl // 4) << 12
    head = _HDR.pack(sport, dport, seq, ack, off_flags, window, 0, urgent) + options
    total = hl + len(payload)
    s = word_sum(head) + pseudo_header_sum(src, dst, PROTO, total)
    if payload:
        s += word_sum(payload)
    csum = 0xFFFF - fold(s)
    return b"".join((head[:16], csum.to_bytes(2, "big"), head[18:], payload))


# ---------------------------------------------------------------------------- the stack's fast paths
# What the TCP engine uses for every segment it sends and receives. The general functions
# above (``parse``, ``build``) do the same job for tools and tests; these avoid the work
# that is the same for every segment of a connection, and the objects ``parse`` makes.


class SegmentTemplate:
    """The fixed part of every segment of one connection: the ports, and the checksum words
    that never change -- the pseudo-header's addresses and protocol and the two ports
    (RFC 9293 §3.1). Since 2**16 ≡ 1 (mod 0xFFFF) a 32-bit value contributes to the
    one's-complement sum the same as its two 16-bit words (see ``checksum.py``), so whole
    fields are added without splitting them.

    ``seq`` and ``ack`` may be the engine's unwrapped ints: their low 32 bits go on the
    wire (RFC 9293 §3.4)."""

    __slots__ = ("sport", "dport", "csum_base")

    def __init__(self, src: bytes, dst: bytes, sport: int, dport: int) -> None:
        self.sport = sport
        self.dport = dport
        self.csum_base = _from_bytes(src, "big") + _from_bytes(dst, "big") + PROTO + sport + dport

    def build(self, seq: int, ack: int, flags: int, window: int, payload: BytesLike = b"",
              options: bytes = b"") -> bytes:
        """A segment with any (32-bit aligned) ``options``; the checksum is computed here."""
        seq &= _MASK32
        ack &= _MASK32
        n = len(payload)
        hl = MIN_HEADER + len(options)
        offflags = (hl << 10) | flags          # data offset (hl // 4) in the top 4 bits
        s = self.csum_base + hl + n + seq + ack + offflags + window
        if options:
            s += _from_bytes(options, "big")
        if n:
            # An odd-length payload is padded with a zero byte for the sum (RFC 9293 §3.1).
            s += reduced_sum(payload)
        r = s % 0xFFFF
        seg = _HDR.pack(self.sport, self.dport, seq, ack, offflags, window,
                        0xFFFF - (r or 0xFFFF), 0)
        if options:
            seg += options
        if n:
            seg += payload
        return seg

    def build_ts(self, seq: int, ack: int, flags: int, window: int, tsval: int, tsecr: int,
                 payload: BytesLike = b"") -> bytes:
        """The usual segment of a timestamp-using connection: options exactly NOP NOP TS
        (RFC 7323 Appendix A), packed together with the header."""
        seq &= _MASK32
        ack &= _MASK32
        tsval &= _MASK32
        n = len(payload)
        offflags = (32 << 10) | flags
        s = (self.csum_base + 32 + n + seq + ack + offflags + window
             + _TSOPT_WORDS + tsval + tsecr)
        if n:
            s += reduced_sum(payload)
        r = s % 0xFFFF
        seg = (_HDR.pack(self.sport, self.dport, seq, ack, offflags, window,
                         0xFFFF - (r or 0xFFFF), 0)
               + _TSOPT.pack(_TSOPT_HEAD, tsval, tsecr))
        if n:
            seg += payload
        return seg

    def build_ts_tso(self, seq: int, ack: int, flags: int, window: int, tsval: int,
                     tsecr: int, payload: BytesLike) -> bytes:
        """A TSO super-segment (``build_ts`` layout): like a NIC driver, leave the checksum
        to the device that cuts it up, with the pseudo-header sum in the field (what the
        device starts from)."""
        n = len(payload)
        offflags = (32 << 10) | flags
        csum = (self.csum_base - self.sport - self.dport + 32 + n) % 0xFFFF or 0xFFFF
        return (_HDR.pack(self.sport, self.dport, seq & _MASK32, ack & _MASK32, offflags, window,
                          csum, 0)
                + _TSOPT.pack(_TSOPT_HEAD, tsval & _MASK32, tsecr) + payload)


def decode_header(segment: BytesLike, src: bytes, dst: bytes,
                  verify_checksum: bool) -> tuple[int, int, int, int, int, int, int]:
    """The receive path's header check: ``(sport, dport, seq, ack, flags, window,
    header_length)``. Raises :class:`MalformedPacket` (counter ``tcp.in_hdr_errors`` or
    ``tcp.in_csum_errors``) for a short segment, a data offset that does not fit, a zero
    port (RFC 9293 §3.1 reserves it) or, with ``verify_checksum``, a bad checksum."""
    n = len(segment)
    if n < MIN_HEADER:
        raise MalformedPacket(f"TCP header truncated: {n} < 20 bytes", "tcp.in_hdr_errors")
    sport, dport, seq, ack, offflags, wnd, _csum, _urg = _HDR.unpack_from(segment, 0)
    hl = (offflags >> 12) << 2
    if hl < MIN_HEADER or hl > n or sport == 0 or dport == 0:
        raise MalformedPacket("TCP data offset or port out of range", "tcp.in_hdr_errors")
    if verify_checksum:
        # RFC 9293 §3.1: the checksum covers a pseudo-header, the header and the data.
        # Good when the ones'-complement sum is 0xFFFF, i.e. the sum is 0 mod 0xFFFF
        # (it cannot be all zero: the pseudo-header alone is not). See reduced_sum.
        if (reduced_sum(segment) + _from_bytes(src, "big") + _from_bytes(dst, "big")
                + PROTO + n) % 0xFFFF:
            raise MalformedPacket("TCP checksum mismatch", "tcp.in_csum_errors")
    return sport, dport, seq, ack, offflags & 0xFF, wnd, hl


def decode_segment(segment: BytesLike, src: bytes, dst: bytes, verify_checksum: bool
                   ) -> tuple[int, int, int, int, int, int, TcpOptions, int | None, int | None,
                              memoryview]:
    """The receive path in one call: ``decode_header`` then ``decode_options``, giving
    ``(sport, dport, seq, ack, flags, window, options, TSval, TSecr, payload)``. Raises
    :class:`MalformedPacket` as they do (a caller counting accepted headers tells the
    options' counter, ``tcp.in_bad_options``, from the header's)."""
    sport, dport, seq, ack, flags, wnd, hl = decode_header(segment, src, dst, verify_checksum)
    mv = segment if isinstance(segment, memoryview) else memoryview(segment)
    if hl == 32 and not flags & SYN and mv[20:24] == _TS_ALIGNED:
        tsval, tsecr = _TS.unpack_from(mv, 24)     # the NOP NOP TS fast path, inline
        return sport, dport, seq, ack, flags, wnd, NO_OPTIONS, tsval, tsecr, mv[hl:]
    opts, tsv, tse = decode_options(mv, hl, flags)
    return sport, dport, seq, ack, flags, wnd, opts, tsv, tse, mv[hl:]


def decode_options(mv: memoryview, hl: int,
                   flags: int) -> tuple[TcpOptions, int | None, int | None]:
    """The options of a received segment as ``(options, TSval, TSecr)``. Fast path: when
    they are exactly NOP NOP TS (nearly every segment of a timestamp-using connection) the
    two numbers come back without a :class:`TcpOptions` (``NO_OPTIONS`` in its place).
    Raises :class:`MalformedPacket` (``tcp.in_bad_options``) as ``parse_options`` does."""
    if hl == 32 and not flags & SYN and mv[20:24] == _TS_ALIGNED:
        tsval, tsecr = _TS.unpack_from(mv, 24)
        return NO_OPTIONS, tsval, tsecr
    if hl > MIN_HEADER:
        opts = parse_options(mv[MIN_HEADER:hl])
        return opts, opts.ts_val, opts.ts_ecr
    return NO_OPTIONS, None, None


def quoted_ports_seq(quoted: BytesLike) -> tuple[int, int, int]:
    """Source port, destination port and sequence number from the first 8 bytes of a TCP
    header quoted in an ICMP error (RFC 792: at least that much is quoted)."""
    if len(quoted) < 8:
        raise MalformedPacket("quoted TCP header shorter than 8 bytes", "tcp.icmp_errors_short")
    sport, dport, seq = _PORTS_SEQ.unpack_from(quoted, 0)
    return sport, dport, seq
