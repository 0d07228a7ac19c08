"""Test harness for the TCP engine, at the level of segments on the wire.

* ``Wire``: several TcpLayers joined by a virtual wire with a virtual clock. Every
  segment is decoded with ``wirestack.wire.tcp.parse`` (checksum verified) and kept in
  ``wire.trace``; filters may drop segments, and seeded impairments may lose, reorder or
  duplicate them.
* ``RawPeer``: one TcpLayer whose segments are captured, and into which a test injects
  hand-built segments (the test plays the other TCP).
"""

from __future__ import annotations

import heapq
import itertools
import random

from wirestack.trace.counters import Counters
from wirestack.trace.events import EventLog
from wirestack.tcp import TcpConfig, TcpLayer
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw
from wirestack.wire.addr import ip_aton, ip_ntoa

A_IP = "198.18.0.1"
B_IP = "198.18.0.2"


class Seg:
    """A decoded segment seen on the wire."""

    __slots__ = ("t", "src", "dst", "h", "data", "raw")

    def __init__(self, t, src, dst, raw):
        self.t = t
        self.src = src
        self.dst = dst
        self.raw = bytes(raw)
        self.h, payload = tcpw.parse(self.raw, src, dst, verify_checksum=True)
        self.data = bytes(payload)

    @property
    def flags(self) -> str:
        return self.h.flag_string

    def has(self, letters: str) -> bool:
        f = self.h.flags
        table = {"S": tcpw.SYN, "F": tcpw.FIN, "R": tcpw.RST, "P": tcpw.PSH, ".": tcpw.ACK,
                 "U": tcpw.URG}
        return all(f & table[c] for c in letters)

    @property
    def seq(self) -> int:
        return self.h.seq

    @property
    def ack(self) -> int:
        return self.h.ack

    def __repr__(self) -> str:
        return (f"{self.t / MS:.3f}ms {ip_ntoa(self.src)}:{self.h.sport} > {ip_ntoa(self.dst)}:"
                f"{self.h.dport} [{self.flags}] seq {self.h.seq} ack {self.h.ack} win "
                f"{self.h.window} len {len(self.data)}")


class Host:
    def __init__(self, wire, name, ip, config, mtu):
        self.wire = wire
        self.name = name
        self.ip = ip_aton(ip)
        self.ip_str = ip
        self.counters = Counters()
        self.log = EventLog(name, enabled=wire.log_enabled)
        self.tcp = TcpLayer(name=name, counters=self.counters, log=self.log,
                            rng=random.Random(wire.rng.random()), config=config or TcpConfig(),
                            ip_output=self._out, route_source=self._route, mtu_for=lambda d: mtu)

    def _route(self, dst):
        if dst == self.ip:
            return self.ip
        return self.ip if dst in self.wire.hosts else None

    def _out(self, src, dst, proto, payload, now):
        assert proto == 6
        assert isinstance(payload, (bytes, bytearray))
        self.wire._send(src, dst, payload, now)

    def socket(self, **kw):
        return self.tcp.socket(**kw)


class Wire:
    def __init__(self, seed: int = 0, delay: int = 1 * MS, loss: float = 0.0,
                 reorder: float = 0.0, dup: float = 0.0, log: bool = True, keep_trace: bool = True):
        self.now = 0
        self.rng = random.Random(seed)
        self.imp_rng = random.Random(seed * 7919 + 1)
        self.delay = delay
        self.loss = loss
        self.reorder = reorder
        self.dup = dup
        self.log_enabled = log
        self.keep_trace = keep_trace
        self.hosts: dict[bytes, Host] = {}
        self.trace: list[Seg] = []
        self.filters = []          # fn(seg) -> True to drop
        self._events = []
        self._tick = itertools.count()
        self.sent = self.dropped = 0

    def host(self, name: str, ip: str, config: TcpConfig | None = None, mtu: int = 1500) -> Host:
        h = Host(self, name, ip, config, mtu)
        self.hosts[h.ip] = h
        return h

    def pair(self, config=None, config_b=None, mtu=1500):
        a = self.host("a", A_IP, config, mtu)
        b = self.host("b", B_IP, config_b if config_b is not None else config, mtu)
        return a, b

    def _send(self, src, dst, payload, now):
        self.sent += 1
        seg = Seg(now, src, dst, payload) if (self.keep_trace or self.filters) else None
        if seg is not None and self.keep_trace:
            self.trace.append(seg)
        if seg is not None:
            for f in self.filters:
                if f(seg):
                    self.dropped += 1
                    return
        r = self.imp_rng
        if self.loss and r.random() < self.loss:
            self.dropped += 1
            return
        t = now + self.delay
        if self.reorder and r.random() < self.reorder:
            t += r.randrange(1, 4) * self.delay
        heapq.heappush(self._events, (t, next(self._tick), src, dst, bytes(payload)))
        if self.dup and r.random() < self.dup:
            heapq.heappush(self._events, (t + r.randrange(0, 3) * self.delay, next(self._tick),
                                          src, dst, bytes(payload)))

    def inject(self, src_ip: str, dst_ip: str, raw: bytes, at: int | None = None):
        heapq.heappush(self._events, (self.now if at is None else at, next(self._tick),
                                      ip_aton(src_ip), ip_aton(dst_ip), raw))

    def next_time(self):
        ts = [h.tcp.poll_at() for h in self.hosts.values()]
        ts = [t for t in ts if t is not None]
        if self._events:
            ts.append(self._events[0][0])
        return min(ts) if ts else None

    def step(self) -> bool:
        t = self.next_time()
        if t is None:
            return False
        if t > self.now:
            self.now = t
        ev = self._events
        while ev and ev[0][0] <= self.now:
            _, _, src, dst, raw = heapq.heappop(ev)
            h = self.hosts.get(dst)
            if h is not None:
                h.tcp.input(src, dst, memoryview(raw), self.now)
        for h in self.hosts.values():
            h.tcp.poll(self.now)
        return True

    def run(self, duration: int | None = None, until=None, max_steps: int = 10_000_000) -> None:
        """Advance virtual time by ``duration`` (or until ``until()`` is true / idle)."""
        end = None if duration is None else self.now + duration
        for _ in range(max_steps):
            if until is not None and until():
                return
            t = self.next_time()
            if t is None or (end is not None and t > end):
                if end is not None:
                    self.now = max(self.now, end)
                return
            self.step()
        raise AssertionError("harness: too many steps (livelock?)")

    def run_until(self, cond, timeout: int = 600 * SEC) -> None:
        self.run(duration=timeout, until=cond)
        assert cond(), "condition not reached before the timeout"

    def segs(self, src: Host | None = None, flags: str | None = None) -> list[Seg]:
        out = self.trace
        if src is not None:
            out = [s for s in out if s.src == src.ip]
        if flags is not None:
            out = [s for s in out if s.has(flags)]
        return out


def connect_pair(wire: Wire, a: Host, b: Host, port: int = 80, client_opts=None, server_opts=None):
    """Listen on b, connect from a, run until both ends are ESTABLISHED."""
    lst = b.socket(**(server_opts or {}))
    lst.bind(("0.0.0.0", port))
    lst.listen(16)
    c = a.socket(**(client_opts or {}))
    c.connect((b.ip_str, port))
    box = {}

    def accepted():
        if "s" not in box:
            s = lst.accept()
            if s is not None:
                box["s"] = s
        return "s" in box and c.state == "ESTABLISHED"

    wire.run_until(accepted, timeout=300 * SEC)
    return c, box["s"], lst


def send_some(sock, view, off: int, chunk: int = 65536) -> int:
    """Offer ``view[off:]`` to ``sock`` until its buffer is full; the new offset."""
    while off < len(view):
        n = sock.send(view[off:off + chunk])
        if n == 0:
            break
        off += n
    return off


def recv_all(sock, got: bytearray) -> bool:
    """Append what ``sock`` has to ``got``; True once it reached end of stream."""
    while True:
        try:
            d = sock.recv(1 << 20)
        except BlockingIOError:
            return False
        if not d:
            return True
        got.extend(d)


def pump(wire: Wire, src_sock, dst_sock, data: bytes, timeout: int = 600 * SEC,
         close: bool = True, chunk: int = 65536) -> bytes:
    """Send ``data`` from src_sock, collect at dst_sock until EOF (if close) or len."""
    view = memoryview(data)
    got = bytearray()
    state = {"off": 0, "eof": False, "shut": False}

    def tick():
        off = state["off"] = send_some(src_sock, view, state["off"], chunk)
        if off == len(view) and close and not state["shut"]:
            src_sock.shutdown_write()
            state["shut"] = True
        if recv_all(dst_sock, got):
            state["eof"] = True
        return state["eof"] if close else len(got) >= len(data)

    wire.run_until(tick, timeout=timeout)
    return bytes(got)


class RawPeer:
    """The TCP under test (``layer``) at 198.18.0.1; the test plays 198.18.0.2."""

    def __init__(self, config: TcpConfig | None = None, mtu: int = 1500, seed: int = 1,
                 local_ip: str = A_IP, peer_ip: str = B_IP):
        self.now = 0
        self.local = ip_aton(local_ip)
        self.peer = ip_aton(peer_ip)
        self.local_str = local_ip
        self.peer_str = peer_ip
        self.counters = Counters()
        self.log = EventLog("dut")
        self.out: list[Seg] = []
        self.all: list[Seg] = []
        self.layer = TcpLayer(name="dut", counters=self.counters, log=self.log,
                              rng=random.Random(seed), config=config or TcpConfig(),
                              ip_output=self._capture,
                              route_source=lambda d: self.local,
                              mtu_for=lambda d: mtu)

    def _capture(self, src, dst, proto, payload, now):
        s = Seg(now, src, dst, payload)
        self.out.append(s)
        self.all.append(s)

    def socket(self, **kw):
        return self.layer.socket(**kw)

    def inject(self, flags: str, seq: int, ack: int = 0, data: bytes = b"", window: int = 65535,
               sport: int = 40000, dport: int = 80, options: bytes = b"", raw: bytes | None = None,
               urgent: int = 0) -> None:
        f = 0
        for c in flags:
            f |= {"S": tcpw.SYN, "F": tcpw.FIN, "R": tcpw.RST, "P": tcpw.PSH, ".": tcpw.ACK,
                  "U": tcpw.URG}[c]
        if raw is None:
            raw = tcpw.build(self.peer, self.local, sport, dport, seq & 0xFFFFFFFF,
                             ack & 0xFFFFFFFF, f, window, data, options, urgent)
        self.layer.input(self.peer, self.local, memoryview(raw), self.now)
        self.layer.poll(self.now)

    def poll(self) -> None:
        self.layer.poll(self.now)

    def advance(self, dt: int) -> None:
        """Move time forward by dt, firing every timer due on the way."""
        end = self.now + dt
        while True:
            t = self.layer.poll_at()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.layer.poll(self.now)
        self.now = end
        self.layer.poll(self.now)

    def next_timer(self) -> int | None:
        """Jump to the next deadline and fire it; returns the new time (None if idle)."""
        t = self.layer.poll_at()
        if t is None:
            return None
        self.now = max(self.now, t)
        self.layer.poll(self.now)
        return self.now

    def take(self) -> list[Seg]:
        out, self.out = self.out, []
        return out

    # handshake helpers ------------------------------------------------------------------
    def passive(self, port: int = 80, peer_isn: int = 1000, window: int = 65535,
                options: bytes | None = None, sport: int = 40000, **sockopts):
        """A listener on the layer under test and a completed handshake from the test side.
        Returns (listener, accepted socket, our next seq, their next seq)."""
        lst = self.socket(**sockopts)
        lst.bind(("0.0.0.0", port))
        lst.listen(8)
        if options is None:
            options = tcpw.encode_options(mss=1460)
        self.inject("S", peer_isn, 0, window=window, options=options, sport=sport, dport=port)
        synack = [s for s in self.take() if s.has("S.")]
        assert synack, "no SYN,ACK"
        iss = synack[-1].seq
        self.inject(".", peer_isn + 1, iss + 1, window=window, sport=sport, dport=port)
        s = lst.accept()
        assert s is not None and s.state == "ESTABLISHED"
        return lst, s, peer_isn + 1, iss + 1

    def active(self, port: int = 80, peer_isn: int = 5000, window: int = 65535,
               options: bytes | None = None, **sockopts):
        """connect() from the layer under test; the test answers SYN,ACK.
        Returns (socket, our next seq, their next seq, local port)."""
        s = self.socket(**sockopts)
        s.connect((self.peer_str, port))
        self.poll()
        syn = [x for x in self.take() if x.has("S")]
        assert syn, "no SYN"
        lport = syn[0].h.sport
        if options is None:
            options = tcpw.encode_options(mss=1460)
        self.inject("S.", peer_isn, syn[0].seq + 1, window=window, options=options, sport=port,
                    dport=lport)
        assert s.state == "ESTABLISHED", s.state
        self.take()
        return s, peer_isn + 1, syn[0].seq + 1, lport
