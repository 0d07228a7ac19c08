"""parse_frame: one entry point that decodes a whole Ethernet frame down to the transport
header. For any input it returns a Frame or raises MalformedPacket, never anything else."""

from __future__ import annotations

from . import arp, ethernet, icmp, ipv4, tcp, udp
from .bytes_like import BytesLike
from .errors import MalformedPacket


class Frame:
    """A decoded frame. Absent layers are None; ``payload`` is the innermost payload
    (transport data, or the IP payload of a fragment / unknown protocol)."""

    __slots__ = ("eth", "arp", "ip", "icmp", "udp", "tcp", "payload")

    def __init__(self, eth: ethernet.EthernetHeader, arp: arp.ArpPacket | None = None,
                 ip: ipv4.IPv4Header | None = None, icmp: icmp.IcmpMessage | None = None,
                 udp: udp.UdpHeader | None = None, tcp: tcp.TcpHeader | None = None,
                 payload: BytesLike = b""):
        self.eth = eth
        self.arp = arp
        self.ip = ip
        self.icmp = icmp
        self.udp = udp
        self.tcp = tcp
        self.payload = payload

    def __repr__(self) -> str:
        layers = [x for x in (self.eth, self.arp, self.ip, self.icmp, self.udp, self.tcp) if x is not None]
        return "Frame(" + " / ".join(map(repr, layers)) + ")"


def parse_frame(data: BytesLike, fcs: bool = False, verify_checksums: bool = True) -> Frame:
    """Decode ``data`` (bytes-like). With ``fcs`` the last 4 bytes are the Ethernet FCS and
    are verified. Checksums of IPv4/ICMP/UDP/TCP are verified unless switched off; a first
    fragment's transport checksum cannot be (it covers the whole datagram) and is not."""
    try:
        return _parse(data, fcs, verify_checksums)
    except MalformedPacket:
        raise
    except Exception as exc:  # a bug here must not escape as anything else
        raise MalformedPacket(f"undecodable frame ({type(exc).__name__}: {exc})") from exc


def _parse(data: object, fcs: bool, verify: bool) -> Frame:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedPacket(f"frame must be bytes, not {type(data).__name__}")
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1 or not data.c_contiguous):
        data = data.tobytes()  # the decoders index and slice bytes: unsigned, flat, contiguous
    if fcs:
        data = ethernet.strip_fcs(data, verify=True)
    eth, rest = ethernet.parse(data)
    frame = Frame(eth)
    if eth.ethertype == ethernet.ETH_P_ARP:
        frame.arp = arp.parse(rest)
        return frame
    if eth.ethertype != ethernet.ETH_P_IPV4:
        frame.payload = rest
        return frame
    ip, body = ipv4.parse(rest, verify_checksum=verify)
    frame.ip = ip
    frame.payload = body
    if ip.frag_offset:
        return frame  # a later fragment: no transport header here
    check = verify and not ip.mf
    if ip.proto == ipv4.PROTO_ICMP:
        frame.icmp = icmp.parse(body, verify_checksum=check)
        frame.payload = frame.icmp.payload
    elif ip.proto == ipv4.PROTO_UDP:
        frame.udp, frame.payload = udp.parse(body, ip.src, ip.dst, verify_checksum=check,
                                             first_fragment=ip.mf)
    elif ip.proto == ipv4.PROTO_TCP:
        frame.tcp, frame.payload = tcp.parse(body, ip.src, ip.dst, verify_checksum=check)
    return frame
