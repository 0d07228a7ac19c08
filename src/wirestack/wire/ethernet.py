"""Ethernet II framing (IEEE 802.3 §3.2 with the DIX type field)."""

from __future__ import annotations

import struct

from .addr import mac_ntoa
from .bytes_like import BytesLike
from .checksum import check_fcs, fcs
from .errors import MalformedPacket

HEADER_LEN = 14
MIN_FRAME = 60  # without FCS: 64-byte minimum frame minus the 4-byte FCS
ETH_P_IPV4 = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_VLAN = 0x8100

_TYPE = struct.Struct("!H")
_ZEROS = bytes(MIN_FRAME)


class EthernetHeader:
    __slots__ = ("dst", "src", "ethertype")

    def __init__(self, dst: bytes, src: bytes, ethertype: int):
        self.dst = dst
        self.src = src
        self.ethertype = ethertype

    def __repr__(self) -> str:
        return f"Ethernet({mac_ntoa(self.src)} > {mac_ntoa(self.dst)}, type 0x{self.ethertype:04x})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EthernetHeader) and (self.dst, self.src, self.ethertype) == (
            other.dst, other.src, other.ethertype)


def parse(buf: BytesLike) -> tuple[EthernetHeader, memoryview]:
    """Decode the 14-byte header; returns (header, payload). Padding stays in the payload:
    the layer above knows its own length."""
    if len(buf) < HEADER_LEN:
        raise MalformedPacket(f"Ethernet frame truncated: {len(buf)} < 14 bytes", "eth.rx_runts")
    mv = memoryview(buf)
    dst = bytes(mv[0:6])
    src = bytes(mv[6:12])
    (ethertype,) = _TYPE.unpack_from(mv, 12)
    if ethertype < 0x0600:
        # An IEEE 802.3 length field (LLC frame), not an Ethernet II type.
        raise MalformedPacket("802.3/LLC frame (length field), not Ethernet II", "eth.rx_unknown_type")
    return EthernetHeader(dst, src, ethertype), mv[HEADER_LEN:]


def build(dst: bytes, src: bytes, ethertype: int, payload: BytesLike = b"", pad: bool = True) -> bytes:
    """Header + payload, padded with zeros to the 60-byte minimum like a real adapter."""
    frame = b"".join((dst, src, _TYPE.pack(ethertype), payload))
    if pad and len(frame) < MIN_FRAME:
        frame += _ZEROS[: MIN_FRAME - len(frame)]
    return frame


def add_fcs(frame: BytesLike) -> bytes:
    return bytes(frame) + fcs(frame)


def strip_fcs(frame_with_fcs: BytesLike, verify: bool = True) -> memoryview:
    """Remove the trailing FCS; with ``verify`` raise MalformedPacket when it is wrong."""
    if len(frame_with_fcs) < HEADER_LEN + 4:
        raise MalformedPacket("frame too short to carry an FCS", "eth.rx_runts")
    if verify and not check_fcs(frame_with_fcs):
        raise MalformedPacket("FCS (CRC-32) mismatch", "eth.rx_fcs_errors")
    return memoryview(frame_with_fcs)[:-4]
