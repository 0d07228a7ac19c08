"""What both runtimes (virtual-time simulation, real-time TAP) offer applications."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from . import datagram, protocols, resolver, streams

if TYPE_CHECKING:
    from ..iface import Host


class RuntimeHost:
    """A sans-I/O :class:`wirestack.iface.Host` plus the loop that drives it.

    Subclasses provide ``loop``, ``kick()`` (ask for the host's output to be sent soon) and
    ``wake()`` (an application became runnable). Applications use the methods below, shaped
    like asyncio's own.
    """

    host: Host                      # set by the subclass
    loop: asyncio.AbstractEventLoop  # set (or a property) in the subclass

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

    async def open_connection(self, host: str, port: int, **sockopts):
        """Like asyncio.open_connection; a name is looked up first with the host's stub
        resolver (``host.dns_servers``), as getaddrinfo would."""
        ip = (await self.getaddrinfo(host))[0]
        return await streams.open_connection(self, ip, port, **sockopts)

    async def getaddrinfo(self, name: str, servers: list[str] | None = None) -> list[str]:
        """The IPv4 addresses of ``name`` (an address is returned as it is), from a DNS query
        to ``servers`` or ``host.dns_servers``; ``socket.gaierror`` when it cannot be found."""
        return await resolver.resolve(self, name, servers)

    async def start_server(self, client_connected_cb, host: str | int | None = None,
                           port: int | str | None = None, **kw):
        """``asyncio.start_server``'s order, ``(cb, "198.18.0.2", 7)`` or ``(cb, port=7)``;
        the short ``(cb, 7)`` (port first, any address) works as well."""
        return await streams.start_server(self, client_connected_cb, host, port, **kw)

    async def create_server(self, protocol_factory, host: str | int | None = None,
                            port: int | str | None = None, **kw):
        """Like ``loop.create_server``: each connection gets ``protocol_factory()`` and a
        transport; its callbacks run inside the host's poll (see runtime/protocols.py)."""
        return await protocols.create_server(self, protocol_factory, host, port, **kw)

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None):
        return await datagram.create_datagram_endpoint(self, protocol_factory, local_addr, remote_addr)

    def ping_socket(self) -> datagram.AsyncPingSocket:
        return datagram.AsyncPingSocket(self)

    async def resolve(self, ip: str, timeout: float = 5.0) -> str | None:
        """ARP-resolve ``ip`` (on a connected network): its MAC as 'aa:bb:..', or None when
        nobody answered (after the host's retries) or ``timeout`` seconds passed."""
        import asyncio
        from ..wire.addr import ip_aton
        host = self.host
        addr = ip_aton(ip)
        deadline = self.loop.time() + timeout
        mac = host.arp_resolve(addr, self.now_ns())
        self.kick()
        while mac is None and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
            entry = host.arp.entries.get(addr)
            if entry is not None:
                mac = entry.mac
            elif addr not in host.arp.pending:
                return None   # every retry went unanswered
        return None if mac is None else mac.hex(":")
