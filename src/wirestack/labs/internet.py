"""Labs across routers: what TTL is for (traceroute), what happens to a datagram too big for
the next hop (fragment, discover the path MTU, or vanish in a black hole), and how flows
share a router's queue (fairness).

Each returns a :class:`~wirestack.labs.lab.Lab`; the runs are
:class:`~wirestack.labs.transfer.TransferResult` where a transfer is measured, or small row
objects with the lab's own columns (``Lab.extra_columns``). Each network is handed to
:mod:`~wirestack.labs.observe` once wired, so ``--pcap``, ``--plot``, ``--html`` and ``--json``
see every run; the seed drives the hosts' ISNs, ephemeral ports and the bytes sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass

from ..runtime.sim import Network
from ..units import SEC
from . import observe
from .lab import conclusion
from .transfer import TransferResult, run_transfer_task


# ----------------------------------------------------------------------------- traceroute
@dataclass
class ProbeRow:
    answered_by: str
    message: str
    rtt: str
    rtt_ms: float | None = None


@dataclass
class TracerouteRun:
    """The one traced path, as ``--json`` and the viewer show it."""
    destination: str
    hops: list[ProbeRow]


def _traceroute_runs(seed: int):
    from ..apps.traceroute import traceroute
    from ..wire import icmp
    net = Network(seed=seed)
    # Router 3 is configured not to send ICMP errors: its hop stays silent.
    # 1 ms of jitter on every link: another seed, other round trips.
    a, routers, b = net.chain(4, delay_ms=5, jitter_ms=1, icmp_errors=[True, True, False, True])
    # Captured on a's link: every probe leaves there and every answer comes back there.
    watch = observe.attach(net, net.media[0], title="traceroute a -> b")
    rows = []
    messages = {}
    watcher = a.host.icmp.error_socket()

    async def main():
        result = await traceroute(a, b.ip, queries=1, wait=1.0, numeric=True)
        while (rec := watcher.receive()) is not None:
            messages[rec.src] = "time exceeded" if rec.type == icmp.TIME_EXCEEDED else (
                icmp.UNREACH_NAMES.get(rec.code, "unreachable"))
        return result

    result = net.run(main())
    from ..wire.addr import ip_aton
    for ttl, (probe,) in enumerate(result.hops, 1):
        if probe.addr is None:
            rows.append((f"TTL {ttl}", ProbeRow("* (no answer)", "-", "-")))
        else:
            rows.append((f"TTL {ttl}", ProbeRow(probe.addr, messages.get(ip_aton(probe.addr), "?"),
                                                f"{probe.rtt_ms:.1f} ms", round(probe.rtt_ms, 1))))
    observe.finish(watch, TracerouteRun(b.ip, [row for _, row in rows]))
    net.close()
    return rows


def _traceroute_lesson(runs) -> str:
    answered = [(label, r) for label, r in runs if r.rtt_ms is not None]
    silent = [label for label, r in runs if r.rtt_ms is None]
    parts = [f"{label} was answered '{r.message}' by {r.answered_by} after {r.rtt_ms:.1f} ms"
             for label, r in answered]
    text = "; ".join(parts) if parts else "no probe was answered"
    if silent:
        text += f"; {', '.join(silent)} got no answer, yet the later probes went through that router"
    if len(answered) >= 2:
        (first_label, first), (last_label, last) = answered[0], answered[-1]
        hops = int(last_label.split()[-1]) - int(first_label.split()[-1])
        if hops > 0:
            text += (f". From {first_label} to {last_label} the round trip grew by "
                     f"{last.rtt_ms - first.rtt_ms:.1f} ms, {(last.rtt_ms - first.rtt_ms) / hops:.1f} ms "
                     f"a hop: one more link there and back")
    return text + "."


def traceroute_lab():
    from .lab import Lab
    return Lab(
        "traceroute", "What TTL is for: traceroute through four routers",
        "Probes with TTL 1, 2, 3, ... towards a host behind four routers (router 3 sends no ICMP).",
        _traceroute_runs, ("answered by", "ICMP message", "rtt"),
        "Every router takes one off the TTL; the one that would send it on with 0 drops the "
        "datagram and sends 'time exceeded' from its own address (RFC 1812 §5.3.1), so probe k "
        "names router k. The destination answers the unlikely UDP port with 'port unreachable'. "
        "A router that sends no ICMP shows as '*', though it forwards as before.",
        conclude=_traceroute_lesson,
        extra_columns={"answered by": lambda r: r.answered_by, "ICMP message": lambda r: r.message,
                "rtt": lambda r: r.rtt})


# ----------------------------------------------------------------------------- flows over routers
def _flow_bytes(seed: int, flow: int, n: int) -> bytes:
    return random.Random(f"internet:{seed}:{flow}").randbytes(n)


def routed_transfer(size: int, *, seed: int = 1, mtu=(1500, 576, 1500), icmp_errors=(True, True),
                    pmtu_discovery: bool = True, deadline: float = 60.0, title: str = "routed transfer",
                    **link) -> TransferResult:
    """``size`` bytes from a to b through a chain of routers (``len(mtu) - 1`` of them) with
    per-link MTUs ``mtu``. The counters of every host (a, r1, ..., b) are in the result."""
    res = TransferResult(size)
    net = Network(seed=seed)
    a, routers, b = net.chain(len(mtu) - 1, mtu=list(mtu), icmp_errors=list(icmp_errors), **link)
    a.host.config.pmtu_discovery = pmtu_discovery
    # Captured on a's link: the sender's segments, and the ICMP that comes back (or not).
    watch = observe.attach(net, net.media[0], title=title)
    data = _flow_bytes(seed, 0, size)
    h = hashlib.sha256()
    servers = []

    async def main():
        done = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            while chunk := await reader.read(1 << 20):
                h.update(chunk)
                res.received += len(chunk)
            done.set_result(True)
            writer.close()

        servers.append(await b.start_server(sink, 5001))
        reader, writer = await a.open_connection(b.ip, 5001)
        sock = writer.get_extra_info("socket")
        try:
            writer.write(data)
            writer.write_eof()
            await done
            res.completed = True
            res.sha256_ok = h.digest() == hashlib.sha256(data).digest()
        finally:
            res.virtual_seconds = net.now / SEC
            res.sender = sock.stats()

    run_transfer_task(net, main(), res, size, deadline, servers)
    res.counters = {name: h.counters.nonzero() for name, h in net.hosts.items()}
    observe.finish(watch, res)
    net.close()
    return res


def _pmtud_runs(seed: int):
    kw: dict = dict(seed=seed, delay_ms=10, jitter_ms=1, deadline=30.0)   # jitter: the seed matters
    return [("fragmenting (DF off)", routed_transfer(300_000, pmtu_discovery=False, title="DF off", **kw)),
            ("PMTU discovery (DF on)", routed_transfer(300_000, title="DF on", **kw)),
            ("black hole (no ICMP)", routed_transfer(300_000, icmp_errors=(False, True), title="black hole",
                                                     **kw))]


def _r(r: TransferResult, host: str, name: str) -> int:
    return r.counters.get(host, {}).get(name, 0)


def _result(r: TransferResult) -> str:
    if r.completed:
        return "sha256 ok" if r.sha256_ok else "CORRUPTED DATA"
    return r.error or "failed"


def _frag_needed(r: TransferResult) -> int:
    return _r(r, "r1", "ip.frag_fails") - _r(r, "r1", "icmp.out_suppressed")


def _pmtud_lesson(frag: TransferResult, discover: TransferResult, hole: TransferResult) -> str:
    def outcome(r: TransferResult) -> str:
        if r.completed:
            return f"{_result(r)} after {r.virtual_seconds:.2f} s"
        return r.error or f"failed with {r.received:,} of {r.size:,} bytes"
    return (f"with DF off router 1 made {_r(frag, 'r1', 'ip.frag_creates')} fragments: {outcome(frag)}. "
            f"With DF on it sent {_frag_needed(discover)} 'fragmentation needed', a's MSS fell to "
            f"{discover.sender.get('snd_mss', '-')} and it retransmitted {discover.sender.get('retransmits', 0)} "
            f"segments: {outcome(discover)}, with {_r(discover, 'r1', 'ip.frag_creates')} fragments. "
            f"With its ICMP filtered router 1 dropped {_r(hole, 'r1', 'ip.frag_fails')} too-big datagrams "
            f"and told nobody ({_r(hole, 'r1', 'icmp.out_suppressed')} ICMP suppressed); a retransmitted "
            f"{hole.sender.get('retransmits', 0)} times at MSS {hole.sender.get('snd_mss', '-')}: {outcome(hole)}.")


def pmtud_lab():
    from .lab import Lab
    return Lab(
        "pmtud", "Too big for the next hop: fragment, discover, or vanish",
        "300 KB from a to b; the link between the two routers takes at most 576 bytes.",
        _pmtud_runs, ("result", "time", "fragments", "frag-needed", "ICMP muted", "MSS", "rexmits"),
        "Without DF router 1 cuts every full-size datagram into fragments (RFC 791) and b "
        "reassembles them: it works, at a cost per datagram, and one lost fragment loses them "
        "all. With DF (RFC 1191) router 1 refuses each too-big datagram with 'fragmentation needed, next-hop MTU "
        "576' (RFC 1812 §5.2.6); TCP lowers its MSS and resends what was refused. If the router's ICMP is filtered the sender never "
        "learns why its big segments vanish: the handshake works, the data never arrives.",
        conclude=lambda runs: conclusion(runs, _pmtud_lesson),
        extra_columns={
            "result": _result,
            "time": lambda r: f"{r.virtual_seconds:.2f} s",
            # Short names, so that the table fits 100 columns: fragments router 1 made,
            # 'fragmentation needed' it sent, ICMP errors it suppressed, a's MSS at the end,
            # a's retransmissions.
            "fragments": lambda r: str(_r(r, "r1", "ip.frag_creates")),
            "frag-needed": lambda r: str(_frag_needed(r)),
            "ICMP muted": lambda r: str(_r(r, "r1", "icmp.out_suppressed")),
            "MSS": lambda r: str(r.sender.get("snd_mss", "-")),
            "rexmits": lambda r: str(r.sender.get("retransmits", 0)),
        })


# ----------------------------------------------------------------------------- fairness
@dataclass
class FlowRow:
    rtt_ms: float
    goodput_bps: float
    share: float
    jain: float | None = None      # on the summary row only
    queue_drops: int | None = None


def jain_index(rates) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one takes all."""
    rates = list(rates)
    total = sum(rates)
    squares = sum(x * x for x in rates)
    return total * total / (len(rates) * squares) if squares else 0.0


def dumbbell(cc: str, *, seed: int = 1, delays_ms=(5, 10, 20, 40), rate_mbps: float = 10,
             queue_limit: int = 40, seconds: float = 30.0, warmup: float = 5.0):
    """Senders s1..sN (one link each, ``delays_ms`` one way) through router r, whose output
    towards d is paced at ``rate_mbps`` with a drop-tail queue of ``queue_limit``: every flow
    meets in that queue. Returns ([(rtt_ms, goodput_bps)], router interface to d)."""
    flows, out, _ = _dumbbell(cc, seed=seed, delays_ms=delays_ms, rate_mbps=rate_mbps,
                              queue_limit=queue_limit, seconds=seconds, warmup=warmup)
    return flows, out


def _dumbbell(cc: str, *, seed: int, delays_ms, rate_mbps: float, queue_limit: int, seconds: float,
              warmup: float, title: str = "dumbbell", jitter_ms: float = 0.0):
    """:func:`dumbbell`, plus the summary row (all flows together) the lab shows."""
    net = Network(seed=seed)
    n = len(delays_ms)
    addresses = [f"198.18.{i + 1}.1/24" for i in range(n)] + ["198.18.100.1/24"]
    r = net.router("r", *addresses, rate_mbps=rate_mbps, queue_limit=queue_limit)
    d = net.host("d", "198.18.100.2/24", gateway="198.18.100.1")
    senders = []
    for i, delay in enumerate(delays_ms):
        s = net.host(f"s{i + 1}", f"198.18.{i + 1}.2/24", gateway=f"198.18.{i + 1}.1")
        net.link(s, r, delay_ms=delay, jitter_ms=jitter_ms)
        senders.append(s)
    bottleneck = net.link(r, d, delay_ms=1)
    # Captured where the flows meet: the router's paced output towards d. The plot follows s1.
    watch = observe.attach(net, bottleneck, title=title, ends=(senders[0], d))
    counts = [0] * n
    at_warmup = [0] * n
    chunk = _flow_bytes(seed, 1, 1 << 16)
    # Buffers well above the largest BDP (82 ms x 10 Mbit/s = 100 KB), but small enough that
    # data held out of order at the warm-up mark barely skews the measured window.
    opts = {"congestion_control": cc, "sndbuf": 256 << 10, "rcvbuf": 256 << 10}

    async def main():
        def sink_for(i):
            async def sink(reader, writer):
                while data := await reader.read(1 << 20):
                    counts[i] += len(data)
                writer.close()
            return sink

        servers = [await d.start_server(sink_for(i), 5001 + i, **opts) for i in range(n)]

        async def send(i):
            _, writer = await senders[i].open_connection("198.18.100.2", 5001 + i, **opts)
            while True:
                writer.write(chunk)
                await writer.drain()

        tasks = [asyncio.ensure_future(send(i)) for i in range(n)]
        await asyncio.sleep(warmup)
        at_warmup[:] = counts
        await asyncio.sleep(seconds - warmup)
        for t in tasks + [t for server in servers for t in server.tasks]:
            t.cancel()
        await asyncio.sleep(0)

    net.run(main())
    span = seconds - warmup
    flows = [(2 * (delay + 1), (counts[i] - at_warmup[i]) * 8 / span) for i, delay in enumerate(delays_ms)]
    out = r.host.interfaces[n]
    total = sum(g for _, g in flows)
    summary = FlowRow(0, total, 1.0, jain_index(g for _, g in flows), out.fwd_queue_drops)
    observe.finish(watch, summary)
    net.close()
    return flows, out, summary


FAIRNESS_DELAYS = {"same RTT": (10, 10, 10, 10), "RTTs differ": (5, 10, 20, 40)}


def _fairness_runs(seed: int):
    rows = []
    for scenario, delays in FAIRNESS_DELAYS.items():
        for label, cc in (("NewReno", "newreno"), ("CUBIC", "cubic")):
            flows, _, summary = _dumbbell(cc, seed=seed, delays_ms=delays, rate_mbps=10, queue_limit=40,
                                          seconds=30.0, warmup=5.0, title=f"{label}, {scenario}",
                                          jitter_ms=1.0)   # jitter: the seed matters
            total = summary.goodput_bps
            for i, (rtt, goodput) in enumerate(flows, 1):
                rows.append((f"{label}, {scenario}: flow {i}",
                             FlowRow(rtt, goodput, goodput / total if total else 0.0)))
            rows.append((f"{label}, {scenario}: all", summary))
    return rows


def _fairness_lesson(runs) -> str:
    """One clause per scenario, from the flows above each summary row."""
    clauses = []
    flows: list[FlowRow] = []
    for label, row in runs:
        if row.jain is None:
            flows.append(row)
            continue
        name = label.rsplit(": ", 1)[0]
        shares = [f.share for f in flows]
        if flows and len({f.rtt_ms for f in flows}) > 1:
            short = min(flows, key=lambda f: f.rtt_ms)
            long = max(flows, key=lambda f: f.rtt_ms)
            spread = (f"the {short.rtt_ms:.0f} ms flow took {100 * short.share:.0f}%, the "
                      f"{long.rtt_ms:.0f} ms one {100 * long.share:.0f}%")
        elif flows and round(100 * min(shares)) == round(100 * max(shares)):
            spread = f"each flow {100 * shares[0]:.0f}%"
        elif flows:
            spread = f"shares from {100 * min(shares):.0f}% to {100 * max(shares):.0f}%"
        else:
            spread = "no flows"
        clauses.append(f"{name}: {spread}, Jain's index {row.jain:.3f}, "
                       f"{row.queue_drops} queue drops, {row.goodput_bps / 1e6:.2f} Mbit/s in all")
        flows = []
    return "; ".join(clauses) + "."


def fairness_lab():
    from .lab import Lab
    return Lab(
        "fairness", "Sharing a bottleneck: four flows through one router queue",
        "Four senders share a 10 Mbit/s router output with a 40-datagram queue for 30 s (shares "
        "measured after the first 5 s): all with a 22 ms RTT, then with 12, 22, 42 and 82 ms.",
        _fairness_runs,
        ("RTT", "goodput", "share", "Jain's index", "queue drops"),
        "The router's drop-tail queue is where the flows meet: when it overflows, whoever "
        "arrives loses a packet and backs off. With equal RTTs NewReno's flows converge on "
        "nearly equal shares (Jain's index (Σx)²/(n·Σx²): 1 = equal, 1/4 = one flow takes "
        "all). NewReno grows its window one segment per round trip, so with different RTTs the "
        "short ones grow faster and take more. CUBIC grows with the time since its last loss "
        "instead; compare its shares, its index and how often it overflows the queue.",
        conclude=_fairness_lesson,
        extra_columns={
            "RTT": lambda r: f"{r.rtt_ms:.0f} ms" if r.rtt_ms else "",
            "goodput": lambda r: f"{r.goodput_bps / 1e6:.2f} Mbit/s",
            "share": lambda r: f"{100 * r.share:.0f}%",
            "Jain's index": lambda r: "" if r.jain is None else f"{r.jain:.3f}",
            "queue drops": lambda r: "" if r.queue_drops is None else str(r.queue_drops),
        })
