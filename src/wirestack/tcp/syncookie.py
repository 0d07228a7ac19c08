"""SYN cookies (RFC 4987 §3.6): answering a SYN without keeping any state.

When a listener's half-open queue is full, its SYN,ACK carries an initial sequence number
that encodes what the TCB would have remembered; the peer's final ACK (SEG.ACK - 1)
brings it back, and the connection is built from it then. A spoofed SYN costs one hash
and one segment, never memory. Why cookies and not, say, evicting the oldest half-open
entry: eviction keeps a legitimate client competing with the flood for a slot (at 10,000
spoofed SYNs per second a slot lives microseconds), while a cookie needs no slot at all,
so a legitimate handshake completes whatever the flood rate.

The 32-bit cookie (our layout, in the spirit of RFC 4987 §3.6):

    bits 31..27  t mod 32, t = now // 64 s (a cookie is accepted for 64-128 s)
    bits 26..24  index of the MSS in ``MSS_TABLE`` (the largest entry <= the peer's MSS)
    bits 23..0   keyed hash (BLAKE2s with the layer's secret) of the 4-tuple, the peer's
                 ISN, t and the MSS index

What the SYN said beyond the MSS would be lost, since no TCB holds it. When the peer uses
timestamps (RFC 7323) we keep the rest in our TSval, which the peer echoes in TSecr: its
window-scale shift (4 bits, 15 = none) and SACK-permitted (1 bit) go into the low 5 bits
of the SYN,ACK's TSval (rounded down so that TSval never runs ahead of our clock, or the
peer's PAWS would later reject our segments). Without timestamps the cookie SYN,ACK
offers neither window scaling nor SACK, so both sides run without them.

The TSval offset of cookie connections is a keyed hash of the 4-tuple (RFC 7323 §5.4
suggests exactly that), so the SYN,ACK and the later TCB agree without stored state.
"""

from __future__ import annotations

import hashlib

from ..units import SEC
from .seq import wrap

PERIOD = 64 * SEC
MSS_TABLE = (536, 1220, 1360, 1400, 1440, 1452, 1460, 8960)
_WS_NONE = 0xF


def _hash(secret: bytes, lip: bytes, lport: int, rip: bytes, rport: int, *words: int) -> int:
    h = hashlib.blake2s(digest_size=4, key=secret[:32])
    h.update(lip + rip + lport.to_bytes(2, "big") + rport.to_bytes(2, "big"))
    for w in words:
        h.update(w.to_bytes(8, "big"))
    return int.from_bytes(h.digest(), "big")


def mss_index(peer_mss: int) -> int:
    idx = 0
    for i, m in enumerate(MSS_TABLE):
        if m <= peer_mss:
            idx = i
    return idx


def make(secret: bytes, lip: bytes, lport: int, rip: bytes, rport: int, peer_isn: int,
         now: int, idx: int) -> int:
    t = now // PERIOD
    h = _hash(secret, lip, lport, rip, rport, peer_isn, t, idx) & 0xFFFFFF
    return ((t & 0x1F) << 27) | (idx << 24) | h


def check(secret: bytes, lip: bytes, lport: int, rip: bytes, rport: int, peer_isn: int,
          cookie: int, now: int) -> int | None:
    """The MSS index if ``cookie`` is one of ours, made in this period or the last."""
    t_now = now // PERIOD
    t5 = cookie >> 27
    idx = (cookie >> 24) & 7
    for t in (t_now, t_now - 1):
        if t >= 0 and (t & 0x1F) == t5:
            if _hash(secret, lip, lport, rip, rport, peer_isn, t, idx) & 0xFFFFFF == cookie & 0xFFFFFF:
                return idx
    return None


def ts_offset(secret: bytes, lip: bytes, lport: int, rip: bytes, rport: int) -> int:
    return _hash(secret, lip, lport, rip, rport, 0x7453)    # RFC 7323 §5.4


def encode_ts(tsval: int, wscale: int | None, sack: bool) -> int:
    """TSval with the peer's options in its low 5 bits, never above ``tsval``."""
    bits = (_WS_NONE if wscale is None else min(wscale, 14)) | (0x10 if sack else 0)
    v = wrap(tsval & ~0x1F) | bits
    if bits > (tsval & 0x1F):
        v = wrap(v - 0x20)
    return v


def decode_ts(tsecr: int) -> tuple[int | None, bool]:
    ws = tsecr & 0xF
    return (None if ws == _WS_NONE else ws), bool(tsecr & 0x10)
