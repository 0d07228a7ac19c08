"""DNS (RFC 1035): a small authoritative server for A records.  The stub resolver that
``open_connection("name", port)`` and ``wirestack get http://name/`` use is
:func:`wirestack.runtime.resolver.resolve` (named here too, for existing callers).

The server's answer is a pure function of the query (``DnsServer.answer``); over UDP an
answer longer than 512 bytes is cut and flagged TC (§4.2.1), and the resolver then asks again
over TCP, where each message is preceded by its two-byte length (§4.2.2).
"""

from __future__ import annotations

import asyncio
import struct

from ..runtime.resolver import resolve
from ..wire import dns as d
from ..wire.addr import ip_aton
from ..wire.errors import MalformedPacket

_LEN = struct.Struct("!H")


class DnsServer:
    """Authoritative for the names in ``zone`` ({"www.lab.test": ["198.18.6.10"], ...}).
    Names not in the zone get NXDOMAIN; a known name asked for another type gets an empty
    NOERROR answer (it exists, with no record of that type)."""

    def __init__(self, zone: dict[str, str | list[str]], ttl: int = 300, counters=None):
        self.ttl = ttl
        self.counters = counters
        self.zone: dict[str, list[bytes]] = {}
        for name, addresses in zone.items():
            if isinstance(addresses, str):
                addresses = [addresses]
            self.zone[d.normalise(name)] = [ip_aton(a) for a in addresses]

    def _count(self, name: str) -> None:
        if self.counters is not None:
            self.counters.incr(name)

    def answer(self, data, udp: bool) -> bytes | None:
        try:
            q = d.parse(data)
        except MalformedPacket as exc:
            self._count(exc.counter)
            return None
        if q.qr:
            return None   # a response sent to a server: ignore it, never answer it
        self._count("dns.in_queries")
        reply = d.DnsMessage(q.id, qr=True, opcode=q.opcode, aa=True, rd=q.rd, ra=False,
                             questions=q.questions[:1])
        if q.opcode != 0:
            reply.rcode = d.NOTIMP
        elif len(q.questions) != 1:
            reply.rcode = d.FORMERR
        else:
            name, qtype, qclass = q.questions[0]
            addresses = self.zone.get(d.normalise(name))
            if addresses is None:
                reply.rcode = d.NXDOMAIN
                self._count("dns.out_nxdomain")
            elif qtype == d.TYPE_A and qclass == d.CLASS_IN:
                reply.answers = [d.Record(name, d.TYPE_A, self.ttl, a) for a in addresses]
        out = d.build(reply)
        if udp and len(out) > d.UDP_LIMIT:
            # RFC 1035 §4.2.1: keep what fits, say so; the client asks again over TCP.
            self._count("dns.out_truncated")
            while reply.answers and len(out) > d.UDP_LIMIT:
                reply.answers.pop()
                reply.tc = True
                out = d.build(reply)
        self._count("dns.out_responses")
        return out


class DnsService:
    """A DnsServer on a runtime host: UDP port 53 (reactive) and TCP port 53."""

    def __init__(self, rt, server: DnsServer, port: int = d.PORT):
        self.rt = rt
        self.server = server
        self.sock = rt.host.udp_socket()
        self.sock.bind(("0.0.0.0", port))
        self.sock.on_event = self._on_udp
        self.tcp = None

    def _on_udp(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom()
            except BlockingIOError:
                break
            except OSError:
                continue
            out = self.server.answer(data, udp=True)
            if out is not None:
                self.sock.sendto(out, addr)
        self.rt.kick()

    async def _on_tcp(self, reader, writer) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(_LEN.unpack(head)[0])
                out = self.server.answer(data, udp=False)
                if out is None:
                    break
                writer.write(_LEN.pack(len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def close(self) -> None:
        self.sock.close()
        if self.tcp is not None:
            self.tcp.close()
            for task in list(self.tcp.tasks):   # connections still open: end them too
                task.cancel()


async def serve_dns(rt, zone: dict, ttl: int = 300, port: int = d.PORT) -> DnsService:
    """Answer for ``zone`` on ``rt`` (UDP and TCP): ``await serve_dns(h, {"www.lab.test":
    "198.18.6.10"})``."""
    svc = DnsService(rt, DnsServer(zone, ttl, rt.host.counters), port)
    svc.tcp = await rt.start_server(svc._on_tcp, port)
    return svc


__all__ = ["DnsServer", "DnsService", "resolve", "serve_dns"]
