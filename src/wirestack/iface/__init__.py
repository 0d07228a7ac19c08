"""The host: interfaces, ARP, IPv4 in/out, routing, fragmentation, ICMP, demux to sockets."""
from .host import Host, HostConfig, Interface

__all__ = ["Host", "HostConfig", "Interface"]
