"""The routing table: connected routes and gateways, longest-prefix match (RFC 1812 §5.2.4.3)."""

from __future__ import annotations

from ..wire.addr import ip_aton, ip_ntoa, parse_cidr, prefix_mask


class Route:
    __slots__ = ("network", "prefix", "mask", "ifindex", "gateway")

    def __init__(self, network: int, prefix: int, ifindex: int, gateway: bytes | None):
        self.mask = prefix_mask(prefix)
        self.network = network & self.mask
        self.prefix = prefix
        self.ifindex = ifindex
        self.gateway = gateway  # None: the destination is on the link (a connected route)

    def __repr__(self) -> str:
        net = ip_ntoa(self.network.to_bytes(4, "big"))
        via = f" via {ip_ntoa(self.gateway)}" if self.gateway else ""
        return f"{net}/{self.prefix}{via} dev if{self.ifindex}"


class RoutingTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._cache: dict[bytes, tuple[int, bytes] | None] = {}

    def add(self, cidr: str, ifindex: int, gateway: str | bytes | None = None) -> Route:
        addr, prefix = parse_cidr(cidr)
        route = Route(int.from_bytes(addr, "big"), prefix, ifindex,
                      ip_aton(gateway) if gateway is not None else None)
        self.routes.append(route)
        # Longest prefix first, so the first match is the best one.
        self.routes.sort(key=lambda r: -r.prefix)
        self._cache.clear()
        return route

    def add_default(self, gateway: str | bytes, ifindex: int | None = None) -> Route:
        if ifindex is None:
            hop = self.lookup(ip_aton(gateway))
            if hop is None:
                raise OSError(101, f"gateway {gateway if isinstance(gateway, str) else ip_ntoa(gateway)} is not on a connected network")
            ifindex = hop[0]
        return self.add("0.0.0.0/0", ifindex, gateway)

    def remove(self, cidr: str) -> int:
        """Remove every route to exactly ``cidr`` ("0.0.0.0/0": the default); how many went."""
        addr, prefix = parse_cidr(cidr)
        network = int.from_bytes(addr, "big") & prefix_mask(prefix)
        before = len(self.routes)
        self.routes = [r for r in self.routes if not (r.prefix == prefix and r.network == network)]
        self._cache.clear()
        return before - len(self.routes)

    def remove_interface_routes(self, ifindex: int, network: int, prefix: int) -> None:
        """Forget the connected route of an address being removed, and every route whose
        gateway was reached through it (as the kernel does when an address goes)."""
        mask = prefix_mask(prefix)

        def goes(r: Route) -> bool:
            if r.ifindex != ifindex:
                return False
            if r.gateway is None:
                return r.network == network and r.prefix == prefix
            return int.from_bytes(r.gateway, "big") & mask == network

        self.routes = [r for r in self.routes if not goes(r)]
        self._cache.clear()

    def lookup(self, dst: bytes) -> tuple[int, bytes] | None:
        """(ifindex, next hop address) for dst, or None when there is no route."""
        try:
            return self._cache[dst]
        except KeyError:
            pass
        d = int.from_bytes(dst, "big")
        result = None
        for r in self.routes:
            if d & r.mask == r.network:
                result = (r.ifindex, r.gateway or dst)
                break
        if len(self._cache) > 4096:
            self._cache.clear()  # bounded memory
        self._cache[dst] = result
        return result

    def __iter__(self):
        return iter(self.routes)
