"""The ARP cache (RFC 826, RFC 1122 §2.3.2): entries that expire, requests that are retried,
and a bounded queue of packets waiting for an answer so the first ping is not lost."""

from __future__ import annotations

from collections import deque

from ..units import SEC


class ArpEntry:
    __slots__ = ("mac", "expires", "next_probe")

    def __init__(self, mac: bytes, expires: int):
        self.mac = mac
        self.expires = expires
        self.next_probe = expires


class PendingResolution:
    __slots__ = ("ifindex", "packets", "tries", "next_try")

    def __init__(self, ifindex: int, next_try: int):
        self.ifindex = ifindex
        self.packets: deque = deque()
        self.tries = 1
        self.next_try = next_try


class ArpCache:
    def __init__(self, timeout: int = 60 * SEC, retry_interval: int = 1 * SEC, retries: int = 3,
                 queue_per_address: int = 8, max_entries: int = 1024):
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.retries = retries
        self.queue_per_address = queue_per_address
        self.max_entries = max_entries
        self.entries: dict[bytes, ArpEntry] = {}
        self.pending: dict[bytes, PendingResolution] = {}
        self.probes: list[tuple[bytes, bytes]] = []   # (ip, mac) to re-check by unicast request
        # How long an expired entry that is still in use may be used while it is re-checked.
        self.stale_grace = retries * retry_interval

    def lookup(self, ip: bytes, now: int) -> bytes | None:
        e = self.entries.get(ip)
        if e is None:
            return None
        if now < e.expires:
            return e.mac
        # Expired but in use (RFC 1122 §2.3.2.1 "unicast poll", like Linux's STALE/PROBE
        # states): keep sending to the known address and re-check it with a unicast request
        # once per retry interval; only after the grace period without an answer forget it.
        # Dropping it at once would stall a busy connection while a broadcast resolves again.
        if now < e.expires + self.stale_grace:
            if now >= e.next_probe:
                e.next_probe = now + self.retry_interval
                self.probes.append((ip, e.mac))
            return e.mac
        del self.entries[ip]
        return None

    def update(self, ip: bytes, mac: bytes, now: int, create: bool) -> bool:
        """RFC 826 'merge': refresh an existing entry; create one only when asked (the request
        was for us). Returns True when the entry exists afterwards."""
        e = self.entries.get(ip)
        if e is not None:
            e.mac = mac
            e.expires = e.next_probe = now + self.timeout
            return True
        if not create:
            return False
        if len(self.entries) >= self.max_entries:
            # Bounded: forget the entry closest to expiry.
            oldest = min(self.entries, key=lambda k: self.entries[k].expires)
            del self.entries[oldest]
        self.entries[ip] = ArpEntry(mac, now + self.timeout)
        return True

    def next_deadline(self) -> int | None:
        if not self.pending:
            return None
        return min(p.next_try for p in self.pending.values())

    def table(self, now: int) -> list[tuple[bytes, bytes, int]]:
        return [(ip, e.mac, e.expires - now) for ip, e in self.entries.items() if e.expires > now]
