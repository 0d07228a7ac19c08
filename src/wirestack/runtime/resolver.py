"""The stub resolver (RFC 1035 §7, RFC 1123 §6.1.3): what ``getaddrinfo`` and
``open_connection("name", port)`` use to turn a name into addresses, asking the host's
``dns_servers`` over UDP (and over TCP when the answer comes back truncated, §4.2.2).

It lives with the socket API it is built on; the DNS server is an application
(:mod:`wirestack.apps.dns`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

from ..wire import dns as d
from ..wire.addr import ip_aton
from ..wire.errors import MalformedPacket

_LEN = struct.Struct("!H")   # RFC 1035 §4.2.2: a TCP message's two-byte length


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

