"""What both runtimes (virtual-time simulation, real-time TAP) offer applications."""

from __future__ import annotations

from . import datagram, streams


class RuntimeHost:
    """A sans-I/O :class:`wirestack.iface.Host` plus the loop that drives it.

    Subclasses provide ``loop``, ``kick()`` (ask for the host's output to be sent soon) and
    ``wake()`` (an application became runnable). Applications use the methods below, shaped
    like asyncio's own.
    """

    host = None
    loop = None

    def kick(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        pass

    def now_ns(self) -> int:
        """The clock the host is driven with (virtual or monotonic), in ns."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def ip(self) -> str:
        return self.host.addresses[0]

    @property
    def counters(self):
        return self.host.counters

    @property
    def log(self):
        return self.host.log

    async def open_connection(self, ip: str, port: int, **sockopts):
        return await streams.open_connection(self, ip, port, **sockopts)

    async def start_server(self, client_connected_cb, port: int, host: str = "0.0.0.0", **kw):
        return await streams.start_server(self, client_connected_cb, port, host, **kw)

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None):
        return await datagram.create_datagram_endpoint(self, protocol_factory, local_addr, remote_addr)

    def ping_socket(self) -> datagram.AsyncPingSocket:
        return datagram.AsyncPingSocket(self)

    async def ping(self, dst: str, count: int = 4, interval: float = 1.0, size: int = 56,
                   timeout: float = 2.0, on_line=None, ttl: int | None = None, **kw):
        from ..apps.ping import ping
        return await ping(self, dst, count=count, interval=interval, size=size,
                          timeout=timeout, on_line=on_line, ttl=ttl, **kw)
