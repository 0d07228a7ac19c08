"""The host: a sans-I/O IPv4 node.

    host.receive(frame, now, ifindex)   a frame arrived on an interface
    host.transmit(now) -> [(ifindex, frame)]   fire due timers, flush sockets, collect output
    host.poll_at() -> ns | None          when it next wants transmit() called

The host never reads a clock nor touches a device: the runtime (simulation or TAP) brings
frames and time in and carries frames out, so the same object runs in both.
"""

from __future__ import annotations

import errno
import random
import struct
from collections import deque
from dataclasses import dataclass

from ..contracts import Transport
from ..trace.counters import Counters
from ..trace.events import EventLog
from ..udp import UdpLayer, UdpSocket
from ..units import SEC
from ..wire import arp as arp_codec
from ..wire import icmp as icmp_codec
from ..wire import ipv4 as ip_codec
from ..wire.addr import BROADCAST_IP, BROADCAST_MAC, ZERO_MAC, ip_aton, ip_ntoa, mac_aton, parse_cidr, prefix_mask
from ..wire.errors import MalformedPacket
from .arp import ArpCache, PendingResolution
from .forward import Forwarder
from .fragment import Reassembler, fragment_sizes
from .icmp import IcmpLayer, PingSocket
from .routing import RoutingTable

_ETH_IPV4 = b"\x08\x00"
_ETH_ARP = b"\x08\x06"
_PAD = bytes(60)
# The fields of an IPv4 header the fast path of _ip_input looks at: version/IHL, total
# length, flags/fragment offset, TTL, protocol, source, destination.
_IP_FAST = struct.Struct("!B1xH2xHBB2x4s4s")
_from_bytes = int.from_bytes


@dataclass
class HostConfig:
    """Host-wide knobs. TCP's own switches live in ``tcp`` (a TcpConfig)."""

    ttl: int = 64
    arp_timeout: int = 60 * SEC           # how long a learned entry is trusted
    arp_retry_interval: int = 1 * SEC     # RFC 1122 §2.3.2.1: at most one request a second
    arp_retries: int = 3
    arp_queue_limit: int = 64             # packets held per unresolved address (fragments count)
    arp_max_pending: int = 1024           # addresses being resolved at once (spoofed sources)
    gratuitous_arp: bool = True           # announce our address when an interface comes up
    reassembly_timeout: int = 30 * SEC
    reassembly_max_bytes: int = 256 * 1024
    reassembly_max_datagrams: int = 64
    reassembly_max_bytes_per_source: int | None = None  # one source's share; None: half
    answer_ping: bool = True
    icmp_errors_per_second: int = 1000    # token bucket for the errors we send (RFC 1812 §4.3.2.8)
    tcp: object = None                    # wirestack.tcp.TcpConfig; None = defaults
    log_events: bool = True
    # Router (RFC 1812): forward datagrams not addressed to us between interfaces.
    forwarding: bool = False
    forward_queue_limit: int = 64         # datagrams waiting per output interface (drop-tail)
    icmp_errors: bool = True              # False: send no ICMP errors at all (a "black hole")
    # RFC 1191: send TCP with DF set and learn the path MTU from fragmentation-needed.
    pmtu_discovery: bool = True
    pmtu_timeout: int = 600 * SEC         # RFC 1191 §6.3: forget a lowered PMTU after 10 min


class Interface:
    __slots__ = ("index", "name", "mac", "address", "prefix", "mtu", "network", "mask",
                 "broadcast", "rate_bps", "fwd_queue", "fwd_free_at", "fwd_queue_peak",
                 "fwd_queue_drops", "layer3", "tso")

    def __init__(self, index: int, name: str, mac: bytes, address: bytes, prefix: int, mtu: int,
                 rate_bps: int | None = None, layer3: bool = False):
        self.index = index
        # A layer-3 (TUN, point-to-point) interface carries bare IP datagrams: no Ethernet
        # header, no ARP; the next hop is simply "the other end".
        self.layer3 = layer3
        self.name = name
        self.mac = mac
        self.address = address
        self.prefix = prefix
        self.mtu = mtu
        # A router's output queue: forwarded datagrams leave at ``rate_bps`` (None: at once),
        # the rest wait here, at most HostConfig.forward_queue_limit of them (drop-tail).
        self.rate_bps = rate_bps
        self.fwd_queue: deque = deque()
        self.fwd_free_at = 0              # when the interface has sent what it started
        self.fwd_queue_peak = 0
        self.fwd_queue_drops = 0
        # TCP segmentation offload: the device below cuts TCP datagrams larger than the MTU
        # into MTU-sized segments itself (a NIC's TSO), so they are not fragmented here.
        self.tso = False
        self.mask = prefix_mask(prefix)
        a = int.from_bytes(address, "big")
        self.network = a & self.mask
        self.broadcast = ((a & self.mask) | (~self.mask & 0xFFFFFFFF)).to_bytes(4, "big")

    def __repr__(self) -> str:
        return f"{self.name}: {ip_ntoa(self.address)}/{self.prefix} mtu {self.mtu}"


class Host:
    def __init__(self, name: str = "host", rng: random.Random | None = None,
                 config: HostConfig | None = None):
        self.name = name
        self.rng = rng if rng is not None else random.Random(0)
        self.config = config or HostConfig()
        self.counters = Counters()
        self.log = EventLog(host=name, enabled=self.config.log_events)
        self.interfaces: list[Interface] = []
        self.routes = RoutingTable()
        self.dns_servers: list[str] = []   # resolvers the stub resolver asks (set by DHCP or by hand)
        self.arp = ArpCache(self.config.arp_timeout, self.config.arp_retry_interval,
                            self.config.arp_retries, self.config.arp_queue_limit)
        self.reassembler = Reassembler(self.config.reassembly_timeout,
                                       self.config.reassembly_max_bytes,
                                       self.config.reassembly_max_datagrams, self.counters,
                                       self.config.reassembly_max_bytes_per_source)
        self._local: dict[bytes, Interface] = {}       # our unicast addresses
        self._broadcasts: set[bytes] = {BROADCAST_IP}
        self._out: list[tuple[int, bytes]] = []
        self._loopback: list[bytes] = []                # datagrams we sent to ourselves
        self._ident = self.rng.randrange(65536)
        self._icmp_tokens = float(self.config.icmp_errors_per_second)
        self._icmp_tokens_at = 0
        self._now = 0
        self._rx_link_broadcast = False                  # the frame being handled was broadcast
        self.pmtu: dict[bytes, tuple[int, int]] = {}     # dst -> (path MTU, expires), RFC 1191
        self.udp = UdpLayer(self.counters, self.rng, self.ip_output, self.source_for,
                            self._send_port_unreachable)
        self.icmp = IcmpLayer(self.counters, self.rng, self.ip_output, self.source_for,
                              self._icmp_error_received)
        self.icmp.answer_echo = self.config.answer_ping
        from ..tcp import TcpConfig, TcpLayer  # the transport sits below the host
        self.tcp = TcpLayer(name=name, counters=self.counters, log=self.log, rng=self.rng,
                            config=self.config.tcp or TcpConfig(), ip_output=self.ip_output,
                            route_source=self.source_for, mtu_for=self.mtu_for)
        # The router part (RFC 1812): used when config.forwarding is on.
        self.forwarder = Forwarder(self.config, self.counters, self.log, self.routes,
                                   self.interfaces, self._broadcasts, self._link_output,
                                   self._send_icmp_error)

    # ------------------------------------------------------------------ configuration
    def add_interface(self, mac, address: str | None, mtu: int = 1500, name: str | None = None,
                      rate_bps: int | None = None, layer3: bool = False) -> int:
        """Attach an interface with ``address`` like '198.18.0.1/24'; adds the connected route.
        ``address=None`` leaves it unconfigured (0.0.0.0, for a DHCP client: it can send and
        receive limited broadcasts only) until ``set_address``. ``rate_bps`` paces what a
        router forwards out of it (see HostConfig.forwarding). ``layer3=True`` makes it a
        TUN-style interface: frames in and out are bare IP datagrams."""
        if mtu < 68:
            raise ValueError("an IPv4 link MTU is at least 68 bytes (RFC 791)")
        if rate_bps is not None and rate_bps <= 0:
            raise ValueError("rate_bps must be positive (or None for no pacing)")
        index = len(self.interfaces)
        iface = Interface(index, name or (f"tun{index}" if layer3 else f"eth{index}"),
                          mac_aton(mac) if mac is not None else bytes(6), b"\0\0\0\0", 32, mtu,
                          rate_bps, layer3)
        self.interfaces.append(iface)
        if address is not None:
            self.set_address(index, address)
        return index

    def enable_tso(self, ifindex: int) -> None:
        """The device under interface ``ifindex`` cuts TCP segments larger than the MTU
        itself (a NIC's TSO, or GSO just before the device): TCP may hand over new data in
        super-segments (up to the 64 KB IP limit with IP and TCP+timestamp headers), and IP
        sends them out of this interface whole instead of fragmenting them."""
        self.tcp.gso_max = 0xFFFF - 20 - 32
        self.interfaces[ifindex].tso = True

    def set_address(self, ifindex: int, address: str | None) -> None:
        """(Re)configure an interface's address ('198.18.5.10/24') with its connected route
        and a gratuitous ARP, or remove it (None) -- what a DHCP client does on bind/expiry."""
        iface = self.interfaces[ifindex]
        if iface.address != b"\0\0\0\0":
            self._local.pop(iface.address, None)
            if not any(i.broadcast == iface.broadcast for i in self.interfaces if i is not iface):
                self._broadcasts.discard(iface.broadcast)
            self._broadcasts.add(BROADCAST_IP)
            self.routes.remove_interface_routes(ifindex, iface.network, iface.prefix)
        if address is None:
            iface.__init__(ifindex, iface.name, iface.mac, b"\0\0\0\0", 32, iface.mtu, iface.rate_bps,
                           iface.layer3)
            return
        ip, prefix = parse_cidr(address)
        queue = iface.fwd_queue
        iface.__init__(ifindex, iface.name, iface.mac, ip, prefix, iface.mtu, iface.rate_bps,
                       iface.layer3)
        iface.fwd_queue = queue
        self._local[ip] = iface
        self._broadcasts.add(iface.broadcast)
        net = ip_ntoa(iface.network.to_bytes(4, "big"))
        self.routes.add(f"{net}/{prefix}", ifindex)
        if self.config.gratuitous_arp and not iface.layer3:
            self._out.append((ifindex, self._arp_frame(iface, arp_codec.REQUEST, BROADCAST_MAC, ip,
                                                       ZERO_MAC)))
            self.counters.incr("arp.out_gratuitous")

    @property
    def addresses(self) -> list[str]:
        return [ip_ntoa(i.address) for i in self.interfaces]

    def source_for(self, dst: bytes) -> bytes | None:
        """The local address to send from towards dst (the outgoing interface's)."""
        if dst in self._local:
            return dst
        if dst == BROADCAST_IP:   # a limited broadcast leaves by the first interface
            return self.interfaces[0].address if self.interfaces else None
        hop = self.routes.lookup(dst)
        return None if hop is None else self.interfaces[hop[0]].address

    def mtu_for(self, dst: bytes) -> int:
        """The MTU towards dst: the outgoing interface's, or the path MTU learned from a
        fragmentation-needed message (RFC 1191 §3), whichever is smaller."""
        hop = self.routes.lookup(dst)
        mtu = self.interfaces[hop[0]].mtu if hop is not None else 576
        learned = self.pmtu.get(dst)
        if learned is not None:
            if learned[1] > self._now:
                return min(mtu, learned[0])
            del self.pmtu[dst]  # RFC 1191 §6.3: an old estimate may be too low; try again
        return mtu

    def add_route(self, cidr: str, via: str, ifindex: int | None = None):
        """A static route: datagrams for ``cidr`` go to the gateway ``via`` (on a connected
        network), e.g. ``host.add_route("198.18.3.0/24", via="198.18.1.2")``."""
        if ifindex is None:
            gw = ip_aton(via)
            hop = self.routes.lookup(gw)
            if hop is None or hop[1] != gw:
                raise OSError(errno.ENETUNREACH, f"gateway {via} is not on a connected network")
            ifindex = hop[0]
        return self.routes.add(cidr, ifindex, via)

    def route_lines(self) -> list[str]:
        """The routing table the way ``ip route`` prints it."""
        lines = []
        for r in sorted(self.routes, key=lambda r: (r.prefix != 0, r.network, -r.prefix)):
            iface = self.interfaces[r.ifindex]
            dst = "default" if r.prefix == 0 else f"{ip_ntoa(r.network.to_bytes(4, 'big'))}/{r.prefix}"
            if r.gateway is None:
                lines.append(f"{dst} dev {iface.name} proto kernel scope link src {ip_ntoa(iface.address)}")
            else:
                lines.append(f"{dst} via {ip_ntoa(r.gateway)} dev {iface.name}")
        return lines

    def neighbour_lines(self, now: int) -> list[str]:
        """The ARP cache the way ``ip neigh`` prints it (REACHABLE, STALE while re-checked,
        INCOMPLETE while a request is outstanding, FAILED never kept)."""
        lines = []
        for ip, entry in self.arp.entries.items():
            hop = self.routes.lookup(ip)
            dev = self.interfaces[hop[0]].name if hop is not None else "?"
            state = "REACHABLE" if now < entry.expires else "STALE"
            lines.append(f"{ip_ntoa(ip)} dev {dev} lladdr {entry.mac.hex(':')} {state}")
        for ip, p in self.arp.pending.items():
            lines.append(f"{ip_ntoa(ip)} dev {self.interfaces[p.ifindex].name} INCOMPLETE")
        return lines

    def arp_resolve(self, ip, now: int) -> bytes | None:
        """The MAC address of ``ip`` (on a connected network) if known; otherwise start
        resolving it (one request now, retries from transmit()) and return None. What
        ``arping``/``ip neigh`` use; ``arp.resolution_failed`` counts the failures."""
        self._now = now
        ip = ip_aton(ip)
        hop = self.routes.lookup(ip)
        if hop is None or hop[1] != ip:
            raise OSError(errno.ENETUNREACH, f"{ip_ntoa(ip)} is not on a connected network")
        if self.interfaces[hop[0]].layer3:
            raise OSError(errno.EOPNOTSUPP, f"{self.interfaces[hop[0]].name} is a layer-3 link: no ARP")
        mac = self.arp.lookup(ip, now)
        if mac is None and ip not in self.arp.pending:
            self.arp.pending[ip] = PendingResolution(hop[0], now + self.arp.retry_interval)
            self._send_arp_request(self.interfaces[hop[0]], ip)
        return mac

    # ------------------------------------------------------------------ sockets
    def udp_socket(self, **options) -> UdpSocket:
        return self.udp.socket(**options)

    def tcp_socket(self, **options):
        return self.tcp.socket(**options)

    def ping_socket(self) -> PingSocket:
        return self.icmp.ping_socket()

    # ------------------------------------------------------------------ the sans-I/O surface
    def receive(self, frame, now: int, ifindex: int = 0, checksum_ok: bool = False) -> None:
        """A frame (no FCS) arrived on interface ``ifindex`` (a bare IP datagram on a
        layer-3 interface).

        ``checksum_ok``: the device vouches for the TCP checksum (a NIC's receive checksum
        offload, or a kernel that handed over a segment it made itself, checksum not yet
        filled in); TCP then skips its own check.  The IP header checksum is always checked."""
        self._now = now
        try:
            iface = self.interfaces[ifindex]
        except IndexError:
            self.counters.incr("eth.rx_no_interface")
            return
        if iface.layer3:
            self._ip_input(memoryview(frame), now, iface, checksum_ok)
            return
        if len(frame) < 14:
            self.counters.incr("eth.rx_runts")
            return
        dst = frame[:6]
        if dst != iface.mac and dst != BROADCAST_MAC and not dst[0] & 1:
            self.counters.incr("eth.rx_not_for_us")
            return
        ethertype = frame[12:14]
        if ethertype == _ETH_IPV4:
            if dst[0] & 1:
                # Sent to every station: RFC 1812 §5.3.4 says a router must not forward it.
                self._rx_link_broadcast = True
                self._ip_input(memoryview(frame)[14:], now, iface, checksum_ok)
                self._rx_link_broadcast = False
                return
            self._ip_input(memoryview(frame)[14:], now, iface, checksum_ok)
        elif ethertype == _ETH_ARP:
            self._arp_input(memoryview(frame)[14:], now, iface)
        else:
            self.counters.incr("eth.rx_unknown_type")

    def transmit(self, now: int) -> list[tuple[int, bytes]]:
        self._now = now
        if self.arp.pending:
            self._arp_timers(now)
        if self.reassembler.pending:
            self._reassembly_timers(now)
        if self.udp.outbox:
            self.udp.poll(now)
        if self.icmp.outbox:
            self.icmp.poll(now)
        if self.forwarder.queued:
            self.forwarder.drain(now)
        self.tcp.poll(now)
        while self._loopback:
            batch, self._loopback = self._loopback, []
            for datagram in batch:
                self._ip_input(memoryview(datagram), now, None)
            self.tcp.poll(now)
        out, self._out = self._out, []
        return out

    def take_output(self) -> list[tuple[int, bytes]]:
        """The frames queued to leave, taken now without polling anything: for a real-time
        runtime that writes an answer as soon as it is made (``TcpLayer.push_output``)."""
        out, self._out = self._out, []
        return out

    def poll_at(self) -> int | None:
        if (self._out or self._loopback or self.udp.poll_at() is not None
                or self.icmp.poll_at() is not None):
            return self._now   # due at once (DUE_NOW): no later than the clock we were driven with
        t = self.tcp.poll_at()
        # ARP, reassembly and forwarding queues are usually idle: only ask them when they
        # hold something.
        for d in ((self.arp.next_deadline() if self.arp.pending else None),
                  (self.reassembler.next_deadline() if self.reassembler.pending else None),
                  (self.forwarder.next_deadline() if self.forwarder.queued else None)):
            if d is not None and (t is None or d < t):
                t = d
        return t

    @property
    def transports(self) -> tuple[Transport, ...]:
        """The transports this host owns, as transmit() and poll_at() drive them: each is
        given ``poll(now)`` and asked ``poll_at()`` (wirestack.contracts.Transport)."""
        return (self.udp, self.icmp, self.tcp)

    def has_state(self) -> bool:
        """True while any connection, fragment or pending resolution is held."""
        return bool(self.tcp.connection_count() or self.reassembler.pending or self.arp.pending)

    # ------------------------------------------------------------------ ARP
    def _arp_frame(self, iface: Interface, op: int, dst_mac: bytes, target_ip: bytes,
                   target_mac: bytes) -> bytes:
        body = arp_codec.build(op, iface.mac, iface.address, target_mac, target_ip)
        return b"".join((dst_mac, iface.mac, _ETH_ARP, body, _PAD[:18]))

    def _arp_input(self, data, now: int, iface: Interface) -> None:
        try:
            pkt = arp_codec.parse(data)
        except MalformedPacket as exc:
            self.counters.incr(exc.counter)
            return
        if pkt.spa in self._local and pkt.sha != iface.mac and pkt.spa == iface.address:
            self.counters.incr("arp.in_address_conflict")
            self.log.record(now, "arp_conflict", ip=ip_ntoa(pkt.spa), mac=pkt.sha.hex(":"))
            return
        # RFC 826 packet reception: merge first, then add if the packet is for us.
        for_us = pkt.tpa == iface.address and iface.address != b"\0\0\0\0"
        known = self.arp.update(pkt.spa, pkt.sha, now, create=for_us) if pkt.spa != b"\0\0\0\0" else False
        if pkt.op == arp_codec.REQUEST:
            self.counters.incr("arp.in_requests")
            if for_us:
                self._out.append((iface.index, self._arp_frame(iface, arp_codec.REPLY, pkt.sha,
                                                               pkt.spa, pkt.sha)))
                self.counters.incr("arp.out_replies")
        elif pkt.op == arp_codec.REPLY:
            self.counters.incr("arp.in_replies")
        if known:
            self._arp_resolved(pkt.spa, pkt.sha, now)

    def _arp_resolved(self, ip: bytes, mac: bytes, now: int) -> None:
        pending = self.arp.pending.pop(ip, None)
        if pending is None:
            return
        iface = self.interfaces[pending.ifindex]
        self.log.record(now, "arp_resolved", ip=ip_ntoa(ip), mac=mac.hex(":"),
                        released=len(pending.packets))
        for datagram in pending.packets:
            self._out.append((iface.index, b"".join((mac, iface.mac, _ETH_IPV4, datagram))))

    def _arp_timers(self, now: int) -> None:
        for ip, p in list(self.arp.pending.items()):
            if p.next_try > now:
                continue
            if p.tries >= self.arp.retries:
                del self.arp.pending[ip]
                self.counters.incr("arp.resolution_failed")
                self.counters.incr("ip.out_discards", len(p.packets))
                self.log.record(now, "arp_failed", ip=ip_ntoa(ip), dropped=len(p.packets))
                self._unreachable_locally(p.packets, now)
                continue
            p.tries += 1
            p.next_try = now + self.arp.retry_interval
            self._send_arp_request(self.interfaces[p.ifindex], ip)

    def _unreachable_locally(self, datagrams, now: int) -> None:
        """Resolution failed: tell our own sockets, as Linux reports EHOSTUNREACH; a datagram
        we were forwarding gets a host unreachable back to its source (RFC 1812 §5.2.7.1)."""
        for datagram in datagrams:
            try:
                hdr = ip_codec.parse_header(datagram)
            except MalformedPacket:
                continue
            if hdr.src not in self._local:
                self._send_icmp_error(datagram, icmp_codec.DEST_UNREACHABLE,
                                      icmp_codec.HOST_UNREACHABLE, now)
                continue
            body = memoryview(datagram)[hdr.header_length:]
            if hdr.proto == 1:   # one of our echo requests: its ping socket hears of it
                self.icmp.report_to_ping(hdr.src, icmp_codec.DEST_UNREACHABLE,
                                         icmp_codec.HOST_UNREACHABLE, body[:8], now)
                continue
            self._icmp_error_received(icmp_codec.DEST_UNREACHABLE, icmp_codec.HOST_UNREACHABLE,
                                      0, hdr, body[:8], now)

    def _send_arp_probes(self, iface: Interface) -> None:
        """Unicast requests re-checking entries that expired while in use."""
        probes, self.arp.probes = self.arp.probes, []
        for ip, mac in probes:
            self.counters.incr("arp.out_probes")
            self._out.append((iface.index, self._arp_frame(iface, arp_codec.REQUEST, mac, ip, ZERO_MAC)))

    def _send_arp_request(self, iface: Interface, ip: bytes) -> None:
        self.counters.incr("arp.out_requests")
        self._out.append((iface.index, self._arp_frame(iface, arp_codec.REQUEST, BROADCAST_MAC,
                                                       ip, ZERO_MAC)))

    # ------------------------------------------------------------------ IPv4 output
    def ip_output(self, src: bytes, dst: bytes, proto: int, payload, now: int,
                  ttl: int | None = None, df: bool = False) -> bool:
        """Send a datagram: route, fragment if needed (RFC 791), resolve, frame.
        Returns False when it could not be sent (no route, too big with DF)."""
        counters = self.counters
        counters["ip.out_requests"] += 1   # (Counters starts every name at 0)
        if proto == 6 and self.config.pmtu_discovery:
            df = True   # RFC 1191 §3: TCP probes the path with DF; frag-needed lowers its MSS
        if dst in self._local:
            # To ourselves: loop it back through input on the next transmit.
            self._ident = (self._ident + 1) & 0xFFFF
            self._loopback.append(ip_codec.build(src, dst, proto, payload, ttl=ttl or self.config.ttl,
                                                 ident=self._ident))
            return True
        if dst == BROADCAST_IP:
            if not self.interfaces:
                return False
            ifindex, next_hop = 0, dst
        else:
            hop = self.routes.lookup(dst)
            if hop is None:
                self.counters.incr("ip.out_no_routes")
                return False
            ifindex, next_hop = hop
        iface = self.interfaces[ifindex]
        self._ident = ident = (self._ident + 1) & 0xFFFF
        ttl = ttl or self.config.ttl
        n = len(payload)
        if 20 + n <= iface.mtu or (proto == 6 and iface.tso and 20 + n <= 0xFFFF):
            if 20 + n > iface.mtu:
                # A TSO super-segment: the device numbers its pieces ident, ident + 1, ...
                # (RFC 6864 §4.1), so those ids are taken too.
                thl = (payload[12] >> 4) * 4
                cut = iface.mtu - 20 - thl
                if cut > 0:
                    self._ident = (ident + (n - thl + cut - 1) // cut - 1) & 0xFFFF
            header = ip_codec.build_simple_header(src, dst, proto, n, ttl, ident, df)
            self._link_output(iface, next_hop, header, now, payload)
            return True
        if df:
            self.counters.incr("ip.frag_fails")
            return False
        # RFC 791 §3.2: cut the payload in multiples of 8 bytes; MF on all but the last.
        pieces = fragment_sizes(n, iface.mtu)
        view = memoryview(payload) if not isinstance(payload, memoryview) else payload
        for off, length in pieces:
            more = off + length < n
            datagram = ip_codec.build_header(src, dst, proto, length, ttl=ttl, ident=ident,
                                             mf=more, frag_offset=off) + bytes(view[off:off + length])
            self._link_output(iface, next_hop, datagram, now)
            self.counters.incr("ip.frag_creates")
        self.counters.incr("ip.frag_oks")
        return True

    def _link_output(self, iface: Interface, next_hop: bytes, datagram: bytes, now: int,
                     payload=b"") -> None:
        """Frame ``datagram + payload`` (kept apart so the bytes are copied only once, into
        the frame) for ``next_hop``, or queue it until ARP has resolved it."""
        if iface.layer3:
            self._out.append((iface.index, b"".join((datagram, payload)) if payload else bytes(datagram)))
            return
        if next_hop == BROADCAST_IP or next_hop == iface.broadcast:
            mac = BROADCAST_MAC
        else:
            mac = self.arp.lookup(next_hop, now)
        if mac is not None:
            if self.arp.probes:
                self._send_arp_probes(iface)
            frame = b"".join((mac, iface.mac, _ETH_IPV4, datagram, payload))
            if len(frame) < 60:
                frame += _PAD[:60 - len(frame)]
            self._out.append((iface.index, frame))
            return
        if payload:
            datagram = datagram + bytes(payload)
        pending = self.arp.pending.get(next_hop)
        if pending is None:
            if len(self.arp.pending) >= self.config.arp_max_pending:
                # Answers to spoofed on-link sources would otherwise start one resolution
                # per address: bounded, the datagram is dropped.
                self.counters.incr("arp.pending_overflow")
                return
            pending = self.arp.pending[next_hop] = PendingResolution(
                iface.index, now + self.arp.retry_interval)
            self._send_arp_request(iface, next_hop)
        if len(pending.packets) >= self.arp.queue_per_address:
            # Bounded queue (RFC 1122 §2.3.2.2 says keep at least one): drop the oldest.
            pending.packets.popleft()
            self.counters.incr("arp.queue_overflow")
        pending.packets.append(datagram)

    # ------------------------------------------------------------------ IPv4 input
    def _ip_input(self, data, now: int, iface: Interface | None, checksum_ok: bool = False) -> None:
        # Fast path for what nearly every datagram is: a 20-byte header (IHL 5), TCP, for
        # one of our addresses, not a fragment (only DF may be set), TTL above zero, the
        # length consistent and the header checksum good.  It makes the same checks as
        # ip_codec.parse (RFC 1122 §3.2.1) without building a header object; anything
        # else, including every error, takes the full path below and is counted there.
        if len(data) >= 20:
            vihl, total, frag, ttl, proto, src, dst = _IP_FAST.unpack_from(data, 0)
            if (vihl == 0x45 and proto == 6 and not frag & 0xBFFF and ttl
                    and 20 <= total <= len(data) and dst in self._local
                    and not _from_bytes(data[:20], "big") % 0xFFFF):
                counters = self.counters
                counters["ip.in_receives"] += 1
                counters["ip.in_delivers"] += 1
                self.tcp.input(src, dst, data[20:total], now, checksum_ok)
                return
        try:
            ip, body = ip_codec.parse(data)
        except MalformedPacket as exc:
            self.counters.incr(exc.counter)
            return
        counters = self.counters
        counters["ip.in_receives"] += 1
        dst = ip.dst
        broadcast = False
        if dst not in self._local:
            if dst in self._broadcasts:
                broadcast = True
            elif self.config.forwarding and iface is not None:
                self.forwarder.forward(ip, data, now, self._rx_link_broadcast)
                return
            else:
                # We are a host, not a router (RFC 1122 §3.3.1.1): not for us -> drop.
                self.counters.incr("ip.in_addr_errors")
                return
        if ip.ttl == 0:
            self.counters.incr("ip.in_ttl_zero")
            return
        if ip.mf or ip.frag_offset:
            whole = self.reassembler.add((ip.src, ip.dst, ip.proto, ip.ident), ip.frag_offset, body,
                                         ip.mf, bytes(data[:ip.header_length + 8]), now)
            if whole is None:
                return
            body = memoryview(whole)
            data = ip_codec.build(ip.src, ip.dst, ip.proto, whole[:8], ttl=ip.ttl, ident=ip.ident)
        proto = ip.proto
        if proto == 6:
            counters["ip.in_delivers"] += 1
            if not broadcast:
                self.tcp.input(ip.src, dst, body, now, checksum_ok)
        elif proto == 17:
            self.counters.incr("ip.in_delivers")
            self.udp.input(ip.src, dst, body, data, now, broadcast)
        elif proto == 1:
            self.counters.incr("ip.in_delivers")
            self.icmp.input(ip, body, now, broadcast)
        else:
            self.counters.incr("ip.in_unknown_protos")
            if not broadcast:
                self._send_icmp_error(data, icmp_codec.DEST_UNREACHABLE,
                                      icmp_codec.PROTO_UNREACHABLE, now)

    def _reassembly_timers(self, now: int) -> None:
        for (src, dst, proto, ident), first_header in self.reassembler.expire(now):
            self.log.record(now, "reassembly_timeout", src=ip_ntoa(src), ident=ident)
            if first_header is not None:
                # RFC 792: time exceeded, code 1, only if fragment zero was received.
                self._send_icmp_error(first_header, icmp_codec.TIME_EXCEEDED,
                                      icmp_codec.REASSEMBLY_TIME_EXCEEDED, now)

    # ------------------------------------------------------------------ ICMP errors
    def _send_port_unreachable(self, ip_datagram, now: int) -> None:
        self._send_icmp_error(ip_datagram, icmp_codec.DEST_UNREACHABLE,
                              icmp_codec.PORT_UNREACHABLE, now)

    def _send_icmp_error(self, offending, type_: int, code: int, now: int,
                         next_hop_mtu: int = 0) -> None:
        """RFC 1122 §3.2.2: never about an ICMP error, a broadcast, or a non-first fragment;
        rate limited by a token bucket."""
        if not self.config.icmp_errors:
            # Switched off (a firewall eating ICMP): the sender never learns why.
            self.counters.incr("icmp.out_suppressed")
            return
        data = bytes(offending)
        try:
            hdr = ip_codec.parse_header(data)
        except MalformedPacket:
            return
        body = data[hdr.header_length:]
        if hdr.frag_offset or hdr.dst in self._broadcasts or hdr.src == b"\0\0\0\0":
            return
        if hdr.proto == 1 and len(body) >= 1 and body[0] in icmp_codec.ERROR_TYPES:
            return
        rate = self.config.icmp_errors_per_second
        self._icmp_tokens = min(float(rate), self._icmp_tokens + (now - self._icmp_tokens_at) * rate / SEC)
        self._icmp_tokens_at = now
        if self._icmp_tokens < 1:
            self.counters.incr("icmp.out_rate_limited")
            return
        self._icmp_tokens -= 1
        src = hdr.dst if hdr.dst in self._local else self.source_for(hdr.src)
        if src is None:
            return
        self.counters.incr("icmp.out_dest_unreachs" if type_ == icmp_codec.DEST_UNREACHABLE
                           else "icmp.out_time_excds" if type_ == icmp_codec.TIME_EXCEEDED
                           else "icmp.out_errors")
        self.ip_output(src, hdr.src, 1, icmp_codec.build_error(type_, code, data, next_hop_mtu), now)

    def _icmp_error_received(self, type_: int, code: int, mtu: int, qhdr, qdata, now: int) -> None:
        """An ICMP error quoting one of our datagrams: hand it to the transport it concerns."""
        if len(qdata) < 4:
            return
        sport = int.from_bytes(qdata[0:2], "big")
        dport = int.from_bytes(qdata[2:4], "big")
        if type_ == icmp_codec.DEST_UNREACHABLE:
            if code == icmp_codec.PORT_UNREACHABLE or code == icmp_codec.PROTO_UNREACHABLE:
                err = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
            elif code == icmp_codec.FRAG_NEEDED:
                err = OSError(errno.EMSGSIZE, "Message too long")
                mtu = self._learn_pmtu(qhdr, mtu, now)
            elif code == icmp_codec.NET_UNREACHABLE:
                err = OSError(errno.ENETUNREACH, "Network is unreachable")
            else:
                err = OSError(errno.EHOSTUNREACH, "No route to host")
        else:
            err = OSError(errno.EHOSTUNREACH, "No route to host")
        self.log.record(now, "icmp_error", type=type_, code=code, src=ip_ntoa(qhdr.src),
                        dst=ip_ntoa(qhdr.dst), proto=qhdr.proto, sport=sport, dport=dport)
        if qhdr.proto == 17:
            self.udp.icmp_error(err, qhdr.src, sport, qhdr.dst, dport)
        elif qhdr.proto == 6:
            self.tcp.icmp_error((type_, code, mtu), qhdr.src, qhdr.dst, bytes(qdata), now)

    def _learn_pmtu(self, qhdr, mtu: int, now: int) -> None:
        """RFC 1191 §3, §5: remember the smaller path MTU towards the quoted destination, so
        new connections start at the right size too. A router that does not fill in the
        next-hop MTU (RFC 792 routers send 0) gets the next plateau below the quoted size
        (RFC 1191 §7). Bounded: the oldest estimate goes first. Returns the MTU used."""
        if not mtu:
            mtu = next((p for p in _MTU_PLATEAUS if p < qhdr.total_length), 68)
        if mtu < 68 or mtu >= self.mtu_for(qhdr.dst):
            return mtu
        if len(self.pmtu) >= 1024 and qhdr.dst not in self.pmtu:
            del self.pmtu[next(iter(self.pmtu))]
        self.pmtu[qhdr.dst] = (mtu, now + self.config.pmtu_timeout)
        self.counters.incr("ip.pmtu_learned")
        self.log.record(now, "pmtu", dst=ip_ntoa(qhdr.dst), mtu=mtu)
        return mtu


# RFC 1191 §7, table 7-1: the MTU plateaus to try when a router does not tell.
_MTU_PLATEAUS = (32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)
