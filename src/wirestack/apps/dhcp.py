"""DHCPv4 (RFC 2131): a server handing out addresses from a pool, and a client that gets one,
configures the host (address, default route, DNS servers) and keeps it by renewing.

Both protocol machines are sans-I/O (bytes and ``now`` in, bytes out, ``poll_at()``); the
async functions at the bottom drive them over the host's UDP sockets (ports 67 and 68).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..units import SEC
from ..wire import dhcp as d
from ..wire.addr import BROADCAST_IP, ip_aton, ip_ntoa, parse_cidr, prefix_mask
from ..wire.errors import MalformedPacket

ZERO = b"\0\0\0\0"


def _secs(n: int) -> bytes:
    return int(n).to_bytes(4, "big")


def _prefix_of(mask: bytes) -> int:
    return bin(int.from_bytes(mask, "big")).count("1")


# ----------------------------------------------------------------------------- server
class _Lease:
    __slots__ = ("ip", "mac", "expires", "bound")

    def __init__(self, ip: bytes, mac: bytes, expires: int, bound: bool):
        self.ip = ip
        self.mac = mac
        self.expires = expires
        self.bound = bound


class DhcpServer:
    """Hands out ``pool`` (first, last address) on the server's subnet (RFC 2131 §4.3).
    ``handle(datagram, now)`` returns the replies as (destination address, bytes): an OFFER
    or ACK/NAK to the limited broadcast (a client without an address cannot answer ARP), an
    ACK to a renewing client to its own address."""

    def __init__(self, server: str, pool: tuple[str, str], *, router: str | None = None,
                 dns: Sequence[str] = (), lease_time: int = 3600, offer_hold: int = 60, counters=None,
                 log=None):
        self.server_ip, self.prefix = parse_cidr(server)
        first, last = (int.from_bytes(ip_aton(x), "big") for x in pool)
        mask = prefix_mask(self.prefix)
        net = int.from_bytes(self.server_ip, "big") & mask
        if not (first <= last and first & mask == net and last & mask == net):
            raise ValueError("the pool must be a range inside the server's subnet")
        if last - first >= 65536:
            raise ValueError("a pool holds at most 65536 addresses")
        self.pool = [a.to_bytes(4, "big") for a in range(first, last + 1)
                     if a.to_bytes(4, "big") != self.server_ip]
        self.mask = mask.to_bytes(4, "big")
        self.router = ip_aton(router) if router else None
        self.dns = [ip_aton(x) for x in dns]
        self.lease_time = lease_time            # seconds
        self.offer_hold = offer_hold * SEC      # how long an offered address stays reserved
        self.counters = counters
        self.log = log
        self.by_ip: dict[bytes, _Lease] = {}
        self.by_mac: dict[bytes, _Lease] = {}

    def _count(self, name: str) -> None:
        if self.counters is not None:
            self.counters.incr(name)

    def leases(self, now: int) -> list[tuple[str, str, float]]:
        """(address, MAC, seconds left) of the bound leases."""
        return [(ip_ntoa(x.ip), x.mac.hex(":"), (x.expires - now) / SEC)
                for x in self.by_ip.values() if x.bound and x.expires > now]

    def _free(self, ip: bytes, mac: bytes, now: int) -> bool:
        lease = self.by_ip.get(ip)
        return lease is None or lease.mac == mac or lease.expires <= now

    def _choose(self, mac: bytes, requested: bytes | None, now: int) -> bytes | None:
        """RFC 2131 §4.3.1: the client's current or last address, else the one it asks
        for, else any free one."""
        mine = self.by_mac.get(mac)
        if mine is not None and self._free(mine.ip, mac, now):
            return mine.ip
        if requested in self.pool and self._free(requested, mac, now):
            return requested
        for ip in self.pool:
            if self._free(ip, mac, now):
                return ip
        return None

    def _hold(self, ip: bytes, mac: bytes, until: int, bound: bool) -> None:
        old = self.by_mac.get(mac)
        if old is not None and old.ip != ip:
            self.by_ip.pop(old.ip, None)
        prev = self.by_ip.get(ip)
        if prev is not None and prev.mac != mac:
            self.by_mac.pop(prev.mac, None)
        lease = _Lease(ip, mac, until, bound)
        self.by_ip[ip] = self.by_mac[mac] = lease

    def handle(self, data, now: int) -> list[tuple[bytes, bytes]]:
        try:
            msg = d.parse(data)
        except MalformedPacket as exc:
            self._count(exc.counter)
            return []
        if msg.op != d.BOOTREQUEST:
            return []
        t = msg.type
        self._count("dhcp.in_" + (d.TYPE_NAMES.get(t, "unknown") if t is not None
                                  else "unknown")[4:].lower())
        mac = msg.chaddr
        if t == d.DISCOVER:
            ip = self._choose(mac, msg.addr_option(d.OPT_REQUESTED_IP), now)
            if ip is None:
                self._count("dhcp.pool_exhausted")
                return []
            self._hold(ip, mac, now + self.offer_hold, bound=False)
            return [self._reply(msg, d.OFFER, ip)]
        if t == d.REQUEST:
            server_id = msg.addr_option(d.OPT_SERVER_ID)
            requested = msg.addr_option(d.OPT_REQUESTED_IP)
            if server_id is not None and server_id != self.server_ip:
                # SELECTING, and the client chose another server: release our offer.
                lease = self.by_mac.get(mac)
                if lease is not None and not lease.bound:
                    self.by_ip.pop(lease.ip, None)
                    del self.by_mac[mac]
                return []
            lease = self.by_mac.get(mac)
            if server_id is not None:                 # SELECTING: the answer to our OFFER
                if requested is None:
                    return [self._reply(msg, d.NAK, ZERO)]   # no address asked for
                ip = requested
                ok = lease is not None and lease.ip == ip and self._free(ip, mac, now)
            elif requested is not None:               # INIT-REBOOT: "may I keep this one?"
                ip = requested
                if ip not in self.pool:
                    return [self._reply(msg, d.NAK, ZERO)]   # wrong network (RFC 2131 §4.3.2)
                if lease is None:
                    return []   # no record of this client: RFC 2131 §4.3.2 says stay silent
                ok = lease.ip == ip and self._free(ip, mac, now)
            else:                                     # RENEWING / REBINDING: ciaddr is set
                ip = msg.ciaddr
                ok = lease is not None and lease.ip == ip and lease.bound and ip != ZERO
            if not ok:
                return [self._reply(msg, d.NAK, ZERO)]
            self._hold(ip, mac, now + self.lease_time * SEC, bound=True)
            if self.log is not None:
                self.log.record(now, "dhcp_lease", ip=ip_ntoa(ip), mac=mac.hex(":"),
                                seconds=self.lease_time)
            return [self._reply(msg, d.ACK, ip)]
        if t == d.RELEASE:
            lease = self.by_mac.get(mac)
            if lease is not None and lease.ip == msg.ciaddr:
                self.by_ip.pop(lease.ip, None)
                del self.by_mac[mac]
            return []
        if t == d.DECLINE:
            # The client found the address in use (ARP): keep it out of the pool a while.
            ip = msg.addr_option(d.OPT_REQUESTED_IP)
            if ip in self.pool:
                self.by_ip[ip] = _Lease(ip, b"declined", now + self.lease_time * SEC, True)
                self.by_mac.pop(mac, None)
            return []
        return []

    def _reply(self, req: d.DhcpMessage, type_: int, yiaddr: bytes) -> tuple[bytes, bytes]:
        opts = {d.OPT_MESSAGE_TYPE: bytes((type_,)), d.OPT_SERVER_ID: self.server_ip}
        if type_ != d.NAK:
            lt = self.lease_time
            opts.update({d.OPT_LEASE_TIME: _secs(lt), d.OPT_RENEWAL_T1: _secs(lt // 2),
                         d.OPT_REBINDING_T2: _secs(lt * 7 // 8), d.OPT_SUBNET_MASK: self.mask})
            if self.router:
                opts[d.OPT_ROUTER] = self.router
            if self.dns:
                opts[d.OPT_DNS] = b"".join(self.dns)
        msg = d.DhcpMessage(d.BOOTREPLY, req.xid, req.chaddr, flags=req.flags, yiaddr=yiaddr,
                            ciaddr=req.ciaddr if type_ == d.ACK else ZERO, giaddr=req.giaddr,
                            siaddr=self.server_ip, options=opts)
        self._count("dhcp.out_" + d.TYPE_NAMES[type_][4:].lower())
        # RFC 2131 §4.1: a client with an address (renewing) gets it by unicast; every other
        # reply is broadcast, since the client cannot answer ARP for the address yet.
        dst = req.ciaddr if (type_ == d.ACK and req.ciaddr != ZERO) else BROADCAST_IP
        return dst, d.build(msg)


# ----------------------------------------------------------------------------- client
@dataclass
class DhcpLease:
    address: str           # '198.18.5.50/24'
    server: str
    router: str | None
    dns: list[str] = field(default_factory=list)
    lease_time: int = 0    # seconds
    obtained: int = 0      # ns
    t1: int = 0            # ns: start renewing (unicast to the server)
    t2: int = 0            # ns: start rebinding (broadcast)
    expires: int = 0       # ns


INIT, SELECTING, REQUESTING, BOUND, RENEWING, REBINDING = (
    "INIT", "SELECTING", "REQUESTING", "BOUND", "RENEWING", "REBINDING")


class DhcpClient:
    """The client state machine of RFC 2131 §4.4 (figure 5), sans-I/O.

    ``poll(now)`` returns what to send as (destination address, bytes) and fires the timers;
    ``receive(datagram, now)`` takes a reply; ``events`` collects ("bound" | "renewed" |
    "expired" | "nak", lease) for the driver; ``poll_at()`` is the next timer."""

    def __init__(self, mac: bytes, rng, hostname: str | None = None, counters=None, log=None,
                 max_backoff: int = 64 * SEC, request_tries: int = 4):
        self.mac = mac
        self.rng = rng
        self.hostname = hostname
        self.counters = counters
        self.log = log
        self.max_backoff = max_backoff
        self.request_tries = request_tries
        self.state = INIT
        self.lease: DhcpLease | None = None
        self.events: list[tuple[str, DhcpLease | None]] = []
        self._out: list[tuple[bytes, bytes]] = []
        self._xid = 0
        self._started = 0
        self._tries = 0
        self._next: int | None = None       # next timer: retransmission or state change
        self._offer: d.DhcpMessage | None = None

    def _count(self, name: str) -> None:
        if self.counters is not None:
            self.counters.incr(name)

    def start(self, now: int) -> None:
        self.state = SELECTING
        self._xid = self.rng.getrandbits(32)
        self._started = now
        self._tries = 0
        self._offer = None
        self._send(now, d.DISCOVER)

    def poll_at(self) -> int | None:
        return self._next

    def _backoff(self, now: int) -> int:
        """RFC 2131 §4.1: 4 s, then doubled up to 64 s, each randomised by ±1 s."""
        base = min(4 * SEC << self._tries, self.max_backoff)
        return now + base + int(self.rng.uniform(-1, 1) * SEC)

    def _send(self, now: int, type_: int) -> None:
        opts = {d.OPT_MESSAGE_TYPE: bytes((type_,)), d.OPT_CLIENT_ID: b"\x01" + self.mac,
                d.OPT_PARAM_REQUEST: bytes((d.OPT_SUBNET_MASK, d.OPT_ROUTER, d.OPT_DNS,
                                            d.OPT_LEASE_TIME, d.OPT_RENEWAL_T1, d.OPT_REBINDING_T2))}
        if self.hostname:
            opts[d.OPT_HOSTNAME] = self.hostname.encode()[:63]
        ciaddr, dst = ZERO, BROADCAST_IP
        lease = self.lease
        if self.state == REQUESTING:
            offer = self._offer
            assert offer is not None   # REQUESTING is entered only with the OFFER in hand
            opts[d.OPT_REQUESTED_IP] = offer.yiaddr
            opts[d.OPT_SERVER_ID] = offer.addr_option(d.OPT_SERVER_ID) or offer.siaddr
        elif self.state in (RENEWING, REBINDING):
            assert lease is not None   # renewing and rebinding keep the lease they renew
            # RFC 2131 §4.3.2: ciaddr set, no server id or requested address.
            ciaddr = ip_aton(lease.address.split("/")[0])
            if self.state == RENEWING:
                dst = ip_aton(lease.server)
        msg = d.DhcpMessage(d.BOOTREQUEST, self._xid, self.mac, ciaddr=ciaddr,
                            secs=min(0xFFFF, (now - self._started) // SEC),
                            flags=d.FLAG_BROADCAST if ciaddr == ZERO else 0, options=opts)
        self._out.append((dst, d.build(msg)))
        self._count("dhcp.out_" + d.TYPE_NAMES[type_][4:].lower())
        if self.state in (SELECTING, REQUESTING):
            self._next = self._backoff(now)
            self._tries += 1
        elif self.state == RENEWING and lease is not None:
            # RFC 2131 §4.4.5: wait half the time left until T2 (at least 60 s) ...
            self._next = min(now + max((lease.t2 - now) // 2, 60 * SEC), lease.t2)
        elif self.state == REBINDING and lease is not None:
            # ... and half the time left until the lease ends.
            self._next = min(now + max((lease.expires - now) // 2, 60 * SEC), lease.expires)

    def poll(self, now: int) -> list[tuple[bytes, bytes]]:
        if self._next is not None and now >= self._next:
            self._timer(now)
        out, self._out = self._out, []
        return out

    def _timer(self, now: int) -> None:
        st = self.state
        if st == SELECTING:
            self._send(now, d.DISCOVER)
        elif st == REQUESTING:
            if self._tries >= self.request_tries:
                self.start(now)   # no answer to our REQUEST: begin again (RFC 2131 §4.4.1)
            else:
                self._send(now, d.REQUEST)
        elif st in (BOUND, RENEWING, REBINDING):
            lease = self.lease
            assert lease is not None   # these states are entered only with a lease
            if now >= lease.expires:
                self._record(now, "dhcp_expired", address=lease.address)
                self.events.append(("expired", lease))
                self.lease = None
                self.start(now)
            elif now >= lease.t2:
                self.state = REBINDING
                self._send(now, d.REQUEST)
            else:
                self.state = RENEWING
                self._send(now, d.REQUEST)

    def _record(self, now, kind, **fields) -> None:
        if self.log is not None:
            self.log.record(now, kind, **fields)

    def receive(self, data, now: int) -> None:
        try:
            msg = d.parse(data)
        except MalformedPacket as exc:
            self._count(exc.counter)
            return
        if msg.op != d.BOOTREPLY or msg.xid != self._xid or msg.chaddr != self.mac:
            self._count("dhcp.in_not_ours")
            return
        t = msg.type
        if t == d.OFFER and self.state == SELECTING:
            # The first offer wins (RFC 2131 §4.4.1 lets the client choose).
            self._count("dhcp.in_offer")
            self._offer = msg
            self.state = REQUESTING
            self._tries = 0
            self._send(now, d.REQUEST)
        elif t == d.ACK and self.state in (REQUESTING, RENEWING, REBINDING):
            self._count("dhcp.in_ack")
            renewed = self.state != REQUESTING
            self.lease = self._lease_from(msg, now)
            self.state = BOUND
            self._next = self.lease.t1
            self._record(now, "dhcp_renewed" if renewed else "dhcp_bound", address=self.lease.address,
                         server=self.lease.server, seconds=self.lease.lease_time)
            self.events.append(("renewed" if renewed else "bound", self.lease))
        elif t == d.NAK and self.state in (REQUESTING, RENEWING, REBINDING):
            self._count("dhcp.in_nak")
            self._record(now, "dhcp_nak")
            had = self.lease
            self.lease = None
            self.events.append(("nak", had))
            self.start(now)
        else:
            self._count("dhcp.in_unexpected")

    def _lease_from(self, msg: d.DhcpMessage, now: int) -> DhcpLease:
        lt = msg.seconds_option(d.OPT_LEASE_TIME) or 3600
        t1 = msg.seconds_option(d.OPT_RENEWAL_T1) or lt // 2
        t2 = msg.seconds_option(d.OPT_REBINDING_T2) or lt * 7 // 8
        mask = msg.addr_option(d.OPT_SUBNET_MASK)
        server = msg.addr_option(d.OPT_SERVER_ID) or msg.siaddr
        router = msg.addr_option(d.OPT_ROUTER)
        return DhcpLease(f"{ip_ntoa(msg.yiaddr)}/{_prefix_of(mask) if mask else 24}", ip_ntoa(server),
                         ip_ntoa(router) if router else None, [ip_ntoa(x) for x in msg.addr_list(d.OPT_DNS)],
                         lt, now, now + t1 * SEC, now + t2 * SEC, now + lt * SEC)


# ----------------------------------------------------------------------------- drivers
class DhcpServerService:
    """The server on a runtime host's UDP port 67: reactive, no timers of its own."""

    def __init__(self, rt, server: DhcpServer):
        self.rt = rt
        self.server = server
        self.sock = rt.host.udp_socket()
        self.sock.bind(("0.0.0.0", d.SERVER_PORT))
        self.sock.on_event = self._on_event

    def _on_event(self) -> None:
        now = self.rt.now_ns()
        for data in _pending_datagrams(self.sock):
            for dst, reply in self.server.handle(data, now):
                self.sock.sendto(reply, (ip_ntoa(dst), d.CLIENT_PORT))
        self.rt.kick()

    def close(self) -> None:
        self.sock.close()


def serve_dhcp(rt, server: str, pool: tuple[str, str], **kw) -> DhcpServerService:
    """Run a DHCP server on ``rt``: ``serve_dhcp(r, "198.18.5.1/24", ("198.18.5.50",
    "198.18.5.99"), router="198.18.5.1", dns=["198.18.5.1"], lease_time=3600)``."""
    return DhcpServerService(rt, DhcpServer(server, pool, counters=rt.host.counters,
                                            log=rt.host.log, **kw))


class DhcpClientService:
    """Keeps a lease for interface ``ifindex`` of a runtime host: configures the address,
    the default route and ``host.dns_servers`` on every bind, removes them on expiry."""

    def __init__(self, rt, ifindex: int = 0, hostname: str | None = None):
        self.rt = rt
        self.ifindex = ifindex
        host = rt.host
        self.client = DhcpClient(host.interfaces[ifindex].mac, host.rng, hostname,
                                 counters=host.counters, log=host.log)
        self.sock = host.udp_socket()
        self.sock.bind(("0.0.0.0", d.CLIENT_PORT))
        self._wake: asyncio.Future | None = None
        self.sock.on_event = self._on_event
        self.bound = asyncio.Event()
        self.task: asyncio.Task | None = None

    def _on_event(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
            self.rt.wake()

    @property
    def lease(self) -> DhcpLease | None:
        return self.client.lease

    def _apply(self, kind: str, lease: DhcpLease | None) -> None:
        host = self.rt.host
        iface = host.interfaces[self.ifindex]
        if kind in ("bound", "renewed"):
            assert lease is not None   # the client reports "bound"/"renewed" with the new lease
            if ip_ntoa(iface.address) + f"/{iface.prefix}" != lease.address:
                host.set_address(self.ifindex, lease.address)
            host.routes.remove("0.0.0.0/0")
            if lease.router:
                host.routes.add_default(lease.router, self.ifindex)
            host.dns_servers = list(lease.dns)
            self.bound.set()
        elif kind in ("expired", "nak") and iface.address != ZERO:
            host.set_address(self.ifindex, None)
            host.dns_servers = []
            self.bound.clear()

    async def run(self) -> None:
        rt, client = self.rt, self.client
        client.start(rt.now_ns())
        while True:
            now = rt.now_ns()
            for data in _pending_datagrams(self.sock):
                client.receive(data, now)
            for dst, payload in client.poll(now):
                self.sock.sendto(payload, (ip_ntoa(dst), d.SERVER_PORT))
                rt.kick()
            while client.events:
                self._apply(*client.events.pop(0))
            # Sleep until a datagram arrives or the next timer (one future, so that close()
            # ends the task at once).
            t = client.poll_at()
            loop = rt.loop
            self._wake = fut = loop.create_future()
            timer = None
            if t is not None:
                timer = loop.call_later(max(0.0, (t - rt.now_ns()) / SEC),
                                        lambda fut=fut: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                if timer is not None:
                    timer.cancel()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.sock.close()


async def dhcp_client(rt, ifindex: int = 0, timeout: float | None = 60.0,
                      hostname: str | None = None) -> DhcpClientService:
    """Start a DHCP client on interface ``ifindex`` and wait (up to ``timeout`` seconds) for
    the first lease; it keeps renewing in the background until ``close()``. Raises
    TimeoutError when no server answered."""
    svc = DhcpClientService(rt, ifindex, hostname)
    svc.task = asyncio.ensure_future(svc.run())
    try:
        await asyncio.wait_for(svc.bound.wait(), timeout)
    except asyncio.TimeoutError:
        svc.close()
        raise TimeoutError(f"no DHCP lease after {timeout:g} s") from None
    return svc


def _pending_datagrams(sock):
    """Every datagram waiting on ``sock`` now; an ICMP error queued on it (an OSError) is
    skipped, as DHCP retransmits by its own timers."""
    while True:
        try:
            data, _ = sock.recvfrom()
        except BlockingIOError:
            return
        except OSError:
            continue
        yield data
