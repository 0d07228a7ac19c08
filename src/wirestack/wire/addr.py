"""Address conversions between the core's ``bytes`` and the strings people type."""

from __future__ import annotations

from .bytes_like import BytesLike
from .errors import MalformedPacket

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ANY_IP = b"\x00\x00\x00\x00"
BROADCAST_IP = b"\xff\xff\xff\xff"


def ip_aton(text: str | bytes) -> bytes:
    """'198.18.0.1' -> b'\\xc6\\x12\\x00\\x01'. Bytes of length 4 pass through."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) != 4:
            raise ValueError(f"an IPv4 address has 4 bytes, not {len(text)}")
        return bytes(text)
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {text!r}")
    try:
        values = [int(p, 10) for p in parts]
    except ValueError:
        raise ValueError(f"not an IPv4 address: {text!r}") from None
    if any(v < 0 or v > 255 for v in values) or any(p != str(int(p)) for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bytes(values)


def ip_ntoa(addr: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(addr)


def parse_cidr(text: str) -> tuple[bytes, int]:
    """'198.18.0.1/24' -> (address bytes, prefix length)."""
    addr, sep, plen = text.partition("/")
    prefix = int(plen) if sep else 32
    if not 0 <= prefix <= 32:
        raise ValueError(f"bad prefix length in {text!r}")
    return ip_aton(addr), prefix


def prefix_mask(prefix: int) -> int:
    return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF


def mac_aton(text: str | bytes) -> bytes:
    if isinstance(text, (bytes, bytearray)):
        if len(text) != 6:
            raise ValueError("a MAC address has 6 bytes")
        return bytes(text)
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


def mac_ntoa(mac: bytes) -> str:
    return ":".join("%02x" % b for b in mac)


def require_len(buf: BytesLike, n: int, what: str, counter: str) -> None:
    if len(buf) < n:
        raise MalformedPacket(f"{what} truncated: {len(buf)} < {n} bytes", counter)
