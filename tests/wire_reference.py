"""Reference code shared by the codec tests, written apart from wirestack.wire on purpose so
that a mistake in the codecs cannot hide in the tests: RFC 1071's checksum done literally,
the UDP/TCP pseudo-header, and the hypothesis strategies the tests draw fields from."""

import struct

from hypothesis import settings
from hypothesis import strategies as st

EXAMPLES = settings(max_examples=200, deadline=None)

mac = st.binary(min_size=6, max_size=6)
ip4 = st.binary(min_size=4, max_size=4)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


def ones_sum(data: bytes) -> int:
    """RFC 1071 §4.1, literally: add 16-bit words, fold the carry back in after each add."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)  # end-around carry
    return s


def internet_checksum(data: bytes) -> int:
    return ~ones_sum(data) & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The IPv4 pseudo-header UDP and TCP checksums cover (RFC 768, RFC 9293 §3.1)."""
    return src + dst + struct.pack("!BBH", 0, proto, length)
