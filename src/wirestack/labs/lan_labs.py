"""Labs on the local network: a shared hub against a switch, and ARP's pending queue."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field

from ..iface import HostConfig
from ..runtime.sim import Network
from ..units import SEC
from . import observe
from .lab import Lab, conclusion, ratio


# -- hub vs switch --------------------------------------------------------------------------

@dataclass
class LanResult:
    medium: str
    completed: int = 0          # transfers that finished with the right sha256
    transfers: int = 0
    seconds: float = 0.0        # until the last transfer finished
    goodput_bps: float = 0.0    # all transfers together
    collisions: int = 0         # eth.tx_collisions summed over the senders
    aborted: int = 0            # frames given up after 16 collisions
    retransmits: int = 0
    per_pair: dict = field(default_factory=dict)


PAIRS = (("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"))


def lan_run(medium: str, seed: int, size: int = 150_000) -> LanResult:
    """Four senders (a, c, e, g) each send ``size`` bytes to their own receiver (b, d, f, h),
    all at once, over one 10 Mbit/s CSMA/CD hub or through a switch with 10 Mbit/s links."""
    res = LanResult(medium, transfers=len(PAIRS))
    net = Network(seed=seed)
    hosts = {}
    for i, (s, r) in enumerate(PAIRS):
        hosts[s] = net.host(s, f"198.18.0.{2 * i + 1}/24")
        hosts[r] = net.host(r, f"198.18.0.{2 * i + 2}/24")
    ends = [hosts[n] for pair in PAIRS for n in pair]
    if medium == "hub":
        net.hub(*ends, csma_cd=True, rate_bps=10_000_000, name="hub")
    else:
        net.switch(*ends, name="switch", rate_mbps=10, delay_ms=0.01)
    watch = observe.attach(net, None, title=medium)
    stats = []

    async def one(s, r, i):
        data = random.Random(f"lan:{seed}:{i}").randbytes(size)
        got = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            h = hashlib.sha256()
            while chunk := await reader.read(65536):
                h.update(chunk)
            got.set_result(h.hexdigest())
            writer.close()
        server = await hosts[r].start_server(sink, 5001)
        reader, writer = await hosts[s].open_connection(hosts[r].ip, 5001)
        writer.write(data)
        writer.write_eof()
        await writer.drain()
        ok = await got == hashlib.sha256(data).hexdigest()
        stats.append(writer.get_extra_info("socket").stats())
        res.per_pair[f"{s}->{r}"] = round(net.now / SEC, 3)
        writer.close()
        server.close()
        return ok

    async def main():
        return await asyncio.gather(*(one(s, r, i) for i, (s, r) in enumerate(PAIRS)))

    try:
        oks = net.run(main(), timeout=300)
        res.completed = sum(oks)
    except (OSError, asyncio.TimeoutError):
        pass
    res.seconds = net.now / SEC
    res.goodput_bps = res.completed * size * 8 / res.seconds if res.seconds else 0.0
    for s, _ in PAIRS:
        c = hosts[s].counters
        res.collisions += c.get("eth.tx_collisions", 0)
        res.aborted += c.get("eth.tx_aborted_collisions", 0)
    res.retransmits = sum(st.get("retransmits", 0) for st in stats)
    observe.finish(watch, res)
    net.close()
    return res


def _hub_vs_switch(seed):
    return [("CSMA/CD hub, 10 Mbit/s shared", lan_run("hub", seed)),
            ("switch, 10 Mbit/s per port", lan_run("switch", seed))]


def _hub_lesson(hub, sw):
    return (f"On the hub the four transfers shared one 10 Mbit/s medium: {hub.collisions} collisions, "
            f"{hub.aborted} frame(s) given up after 16 attempts, {hub.retransmits} TCP retransmissions, "
            f"{hub.goodput_bps / 1e6:.2f} Mbit/s in all, the last one done after {hub.seconds:.2f} s. "
            f"Through the switch each pair had its own ports: {sw.collisions} collisions, "
            f"{sw.goodput_bps / 1e6:.2f} Mbit/s in all ({ratio(sw.goodput_bps, hub.goodput_bps)}), "
            f"done after {sw.seconds:.2f} s.")


HUB_VS_SWITCH = Lab(
    "hub-vs-switch", "Hub or switch: four senders on one LAN",
    "Four pairs of hosts transfer at the same time. What do collisions cost on a shared hub?",
    _hub_vs_switch,
    ("result", "time", "goodput", "collisions", "given up", "retransmits"),
    "A hub repeats every frame to every port: one transmission at a time, and two stations that "
    "start within a slot time collide, jam and back off (IEEE 802.3 §4.2). A switch stores and "
    "forwards each frame to its destination's port only, so the pairs do not compete at all.",
    conclude=lambda runs: conclusion(runs, _hub_lesson),
    extra_columns={
        "result": lambda r: f"{r.completed}/{r.transfers} ok",
        "time": lambda r: f"{r.seconds:.2f} s",
        "goodput": lambda r: f"{r.goodput_bps / 1e6:.2f} Mbit/s",
        "collisions": lambda r: str(r.collisions),
        "given up": lambda r: str(r.aborted),
        "retransmits": lambda r: str(r.retransmits)})


# -- ARP's pending queue --------------------------------------------------------------------

@dataclass
class ArpResult:
    queue: int
    sent: int = 0
    echoed: int = 0
    overflow: int = 0
    first_reply_ms: float = 0.0
    arp_requests: int = 0


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self):
        self.got: list[tuple[bytes, int]] = []

    def datagram_received(self, data, addr):
        self.got.append(data)


def arp_run(queue: int, seed: int, burst: int = 8) -> ArpResult:
    """a sends ``burst`` UDP datagrams to b at once, before it knows b's MAC address."""
    res = ArpResult(queue)
    net = Network(seed=seed)
    cfg = HostConfig(arp_queue_limit=queue)
    a = net.host("a", "198.18.0.1/24", config=cfg)
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=2 + random.Random(f"arp:{seed}").random() * 3, rate_mbps=100)
    watch = observe.attach(net, link, title=f"ARP queue {queue}")

    async def main():
        await b.create_datagram_endpoint(_Echo, local_addr=("0.0.0.0", 7))
        tr, client = await a.create_datagram_endpoint(_Client, remote_addr=("198.18.0.2", 7))
        t0 = net.now
        for i in range(burst):
            tr.sendto(b"request %d" % i)
            res.sent += 1
        while not client.got and net.now - t0 < SEC:
            await asyncio.sleep(0.001)
        res.first_reply_ms = (net.now - t0) / 1e6 if client.got else 0.0
        await asyncio.sleep(0.5)
        res.echoed = len(client.got)
        tr.close()

    net.run(main())
    res.overflow = a.counters.get("arp.queue_overflow", 0)
    res.arp_requests = a.counters.get("arp.out_requests", 0)
    observe.finish(watch, res)
    net.close()
    return res


def _arp_queue(seed):
    return [("pending queue of 64 packets", arp_run(64, seed)),
            ("queue of 1 (the oldest BSD behaviour)", arp_run(1, seed))]


def _arp_lesson(big, small):
    return (f"a sent {big.sent} datagrams before b's MAC address was known. With a 64-packet queue "
            f"all {big.echoed} came back (the first after {big.first_reply_ms:.1f} ms: one ARP round trip "
            f"plus one echo). With one slot, {small.overflow} were dropped inside a while it waited for "
            f"the ARP reply, and only {small.echoed} came back; nothing on the wire was lost.")


ARP_QUEUE = Lab(
    "arp-queue", "ARP's pending queue: the first packets to a new neighbour",
    "A host sends 8 datagrams to an address it has not resolved yet. Which ones arrive?", _arp_queue,
    ("sent", "echoed", "ARP queue drops", "ARP requests", "first reply"),
    "IP cannot send a datagram until ARP has found the next hop's MAC address; RFC 1122 "
    "§2.3.2.2 asks the host to keep at least one waiting packet per address. With too small a "
    "queue the first packets of a conversation vanish inside the sender.",
    conclude=lambda runs: conclusion(runs, _arp_lesson),
    extra_columns={"sent": lambda r: str(r.sent), "echoed": lambda r: str(r.echoed),
                   "ARP queue drops": lambda r: str(r.overflow),
                   "ARP requests": lambda r: str(r.arp_requests),
                   "first reply": lambda r: f"{r.first_reply_ms:.1f} ms"})
