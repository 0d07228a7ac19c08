"""traceroute, in the style of traceroute(8): probes with TTL 1, 2, 3, ... until the
destination answers. Each router that drops a probe because its TTL ran out sends an ICMP
time exceeded (RFC 792, RFC 1812 §5.3.1) from its own address: that address is the hop.

UDP probes (the default) go to unlikely ports (33434 and up), so the destination itself
answers with port unreachable; ``icmp=True`` (``-I``) sends echo requests instead and the
destination answers with an echo reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..iface.icmp import EchoReply, IcmpErrorReport
from ..runtime.datagram import icmp_error_socket
from ..wire import icmp as icmp_codec
from ..wire.addr import ip_aton, ip_ntoa

BASE_PORT = 33434
# What traceroute(8) prints after a time for an unreachable other than "port".
_ANNOTATIONS = {icmp_codec.NET_UNREACHABLE: "!N", icmp_codec.HOST_UNREACHABLE: "!H",
                icmp_codec.PROTO_UNREACHABLE: "!P"}


@dataclass
class Probe:
    addr: str | None           # who answered; None: no answer in time (printed as *)
    rtt_ms: float | None = None
    note: str = ""             # !H, !N, !P, !F-<mtu>


@dataclass
class TracerouteResult:
    dst: str
    hops: list[list[Probe]] = field(default_factory=list)
    reached: bool = False

    def hop_addresses(self) -> list[str | None]:
        """The first address that answered at each hop (None for a silent one)."""
        return [next((p.addr for p in hop if p.addr), None) for hop in self.hops]


def format_hop(ttl: int, probes: list[Probe], numeric: bool = False) -> str:
    parts = [f"{ttl:2d} "]
    last = None
    for p in probes:
        if p.addr is None:
            parts.append(" *")
            continue
        if p.addr != last:
            parts.append(f" {p.addr}" if numeric else f" {p.addr} ({p.addr})")
            last = p.addr
        parts.append(f"  {p.rtt_ms:.3f} ms" + (f" {p.note}" if p.note else ""))
    return "".join(parts)


async def traceroute(runtime, dst: str, *, max_hops: int = 30, queries: int = 3,
                     wait: float = 5.0, icmp: bool = False, size: int = 60, first_ttl: int = 1,
                     port: int = BASE_PORT, numeric: bool = False, on_line=None) -> TracerouteResult:
    """Trace the path to ``dst``; ``on_line(str)`` receives the lines traceroute(8) prints.
    ``wait`` is how long (seconds) to wait for each probe's answer."""
    emit = on_line or (lambda line: None)
    target = ip_aton(dst)
    size = max(size, 28)
    emit(f"traceroute to {dst} ({dst}), {max_hops} hops max, {size} byte packets")
    result = TracerouteResult(dst)
    errors = icmp_error_socket(runtime)
    pinger = runtime.ping_socket() if icmp else None
    payload = bytes(size - 28)
    probe_no = 0
    try:
        for ttl in range(first_ttl, max_hops + 1):
            hop: list[Probe] = []
            for _ in range(queries):
                if icmp:
                    probe = await _icmp_probe(runtime, pinger, dst, target, probe_no, ttl, payload, wait)
                else:
                    probe = await _udp_probe(runtime, errors, target, port + probe_no, ttl, payload, wait)
                probe_no += 1
                hop.append(probe)
            result.hops.append(hop)
            emit(format_hop(ttl, hop, numeric))
            if any(p.addr == dst or p.note in ("!N", "!H", "!P") for p in hop):
                result.reached = any(p.addr == dst for p in hop)
                break
    finally:
        errors.close()
        if pinger is not None:
            pinger.close()
    return result


def _note(type_: int, code: int, mtu: int) -> str:
    if type_ != icmp_codec.DEST_UNREACHABLE or code == icmp_codec.PORT_UNREACHABLE:
        return ""
    if code == icmp_codec.FRAG_NEEDED:
        return f"!F-{mtu}"
    return _ANNOTATIONS.get(code, f"!<{code}>")


async def _udp_probe(runtime, errors, target: bytes, dport: int, ttl: int, payload: bytes,
                     wait: float) -> Probe:
    sock = runtime.host.udp_socket()
    try:
        sock.ttl = ttl
        sock.sendto(payload, (ip_ntoa(target), dport))
        sport = sock.local[1]
        sent = runtime.now_ns()
        runtime.kick()
        deadline = runtime.loop.time() + wait
        while (remaining := deadline - runtime.loop.time()) > 0:
            rec = await errors.receive(remaining)
            if rec is None:
                break
            q, data = rec.quoted_ip, rec.quoted_data
            if (q.dst != target or q.proto != 17 or len(data) < 4
                    or int.from_bytes(data[0:2], "big") != sport
                    or int.from_bytes(data[2:4], "big") != dport):
                continue   # an answer to another probe (a late one) or to someone else
            return Probe(ip_ntoa(rec.src), (rec.time - sent) / 1e6, _note(rec.type, rec.code, rec.mtu))
        return Probe(None)
    finally:
        sock.close()


async def _icmp_probe(runtime, pinger, dst: str, target: bytes, seq: int, ttl: int,
                      payload: bytes, wait: float) -> Probe:
    seq &= 0xFFFF
    pinger.send(dst, seq, payload, ttl=ttl)
    sent = runtime.now_ns()
    deadline = runtime.loop.time() + wait
    while (remaining := deadline - runtime.loop.time()) > 0:
        item = await pinger.receive(remaining)
        if item is None:
            break
        if item.seq != seq:
            continue
        if isinstance(item, EchoReply):
            return Probe(ip_ntoa(item.src), (item.time - sent) / 1e6)
        if isinstance(item, IcmpErrorReport):
            return Probe(ip_ntoa(item.src), (item.time - sent) / 1e6, _note(item.type, item.code, 0))
    return Probe(None)
