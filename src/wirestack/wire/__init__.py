"""Stateless packet codecs: parse bytes into header objects (or raise MalformedPacket),
build header objects' bytes. No state, no clock: everything here can be fuzzed."""

from . import addr, arp, checksum, ethernet, icmp, ipv4, tcp, udp
from .addr import ip_aton, ip_ntoa, mac_aton, mac_ntoa
from .errors import MalformedPacket
from .frame import Frame, parse_frame

__all__ = ["MalformedPacket", "Frame", "parse_frame", "addr", "arp", "checksum", "ethernet",
           "icmp", "ipv4", "tcp", "udp", "ip_aton", "ip_ntoa", "mac_aton", "mac_ntoa"]
