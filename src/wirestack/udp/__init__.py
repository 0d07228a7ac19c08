"""UDP datagram sockets (RFC 768)."""
from .socket import UdpLayer, UdpSocket

__all__ = ["UdpLayer", "UdpSocket"]
