"""DNS (RFC 1035): a small authoritative server for A records, and the stub resolver that
``open_connection("name", port)`` and ``wirestack get http://name/`` use.

The server's answer is a pure function of the query (``DnsServer.answer``); over UDP an
answer longer than 512 bytes is cut and flagged TC (§4.2.1), and the resolver then asks again
over TCP, where each message is preceded by its two-byte length (§4.2.2).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

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


# ----------------------------------------------------------------------------- stub resolver
def _literal(name: str) -> bool:
    try:
        ip_aton(name)
        return True
    except ValueError:
        return False


def _gaierror(code: int, text: str) -> socket.gaierror:
    return socket.gaierror(code, text)


async def resolve(rt, name: str, servers: list[str] | None = None, timeout: float = 2.0,
                  attempts: int = 3) -> list[str]:
    """The IPv4 addresses of ``name``, asked of ``servers`` (default: ``host.dns_servers``)
    like a stub resolver (RFC 1035 §7, RFC 1123 §6.1.3): a UDP query with a random id, each
    server in turn, ``attempts`` rounds of ``timeout`` seconds; a truncated answer is asked
    again over TCP. Raises ``socket.gaierror`` as ``getaddrinfo`` does."""
    if _literal(name):
        return [name]
    host = rt.host
    servers = list(servers if servers is not None else host.dns_servers)
    if not servers:
        raise _gaierror(socket.EAI_FAIL, f"{name}: no DNS server configured")
    counters = host.counters
    sock = host.udp_socket()
    wake = asyncio.Event()

    def on_event():
        wake.set()
        rt.wake()

    sock.on_event = on_event
    try:
        for _ in range(attempts):
            for server in servers:
                ident = host.rng.getrandbits(16)
                try:
                    sock.sendto(d.query(ident, name), (server, d.PORT))
                except OSError:
                    continue
                counters.incr("dns.out_queries")
                rt.kick()
                reply = await _await_reply(rt, sock, wake, server, ident, name, timeout)
                if reply is None:
                    counters.incr("dns.timeouts")
                    continue
                if reply.tc:
                    counters.incr("dns.tcp_fallbacks")
                    try:
                        reply = await asyncio.wait_for(_tcp_query(rt, server, ident, name), timeout * 2)
                    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, MalformedPacket):
                        continue
                if reply.rcode == d.NXDOMAIN:
                    raise _gaierror(socket.EAI_NONAME, f"{name}: Name or service not known")
                if reply.rcode != d.NOERROR:
                    continue   # SERVFAIL, REFUSED ...: try the next server
                addresses = [r.address for r in reply.answers if r.type == d.TYPE_A and r.address]
                if not addresses:
                    raise _gaierror(socket.EAI_NODATA, f"{name}: no address associated with name")
                return addresses
        raise _gaierror(socket.EAI_AGAIN, f"{name}: Temporary failure in name resolution")
    finally:
        sock.close()


async def _await_reply(rt, sock, wake, server: str, ident: int, name: str, timeout: float):
    """The response to our query (same id, same question, from that server), or None."""
    loop = rt.loop
    deadline = loop.time() + timeout
    while True:
        while True:
            try:
                data, addr = sock.recvfrom()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    return None   # port unreachable: no DNS server there
                continue
            if addr != (server, d.PORT):
                continue
            try:
                msg = d.parse(data)
            except MalformedPacket as exc:
                rt.host.counters.incr(exc.counter)
                continue
            # RFC 5452 §4.1: only a response matching id, question and server is accepted.
            if (msg.qr and msg.id == ident and len(msg.questions) == 1
                    and d.normalise(msg.questions[0][0]) == d.normalise(name)):
                return msg
            rt.host.counters.incr("dns.in_mismatched")
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), remaining)
        except asyncio.TimeoutError:
            pass


async def _tcp_query(rt, server: str, ident: int, name: str) -> d.DnsMessage:
    reader, writer = await rt.open_connection(server, d.PORT)
    try:
        q = d.query(ident, name)
        writer.write(_LEN.pack(len(q)) + q)
        await writer.drain()
        head = await reader.readexactly(2)
        msg = d.parse(await reader.readexactly(_LEN.unpack(head)[0]))
        if msg.id != ident:
            raise MalformedPacket("TCP answer for another query", "dns.in_mismatched")
        return msg
    finally:
        writer.close()

