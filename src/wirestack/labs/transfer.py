"""One TCP transfer between two simulated hosts, measured: the building block of the labs and
the benchmarks."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from dataclasses import dataclass, field
from typing import TypeVar

from ..iface import HostConfig
from ..runtime.sim import Network
from ..tcp import TcpConfig
from ..units import SEC
from . import observe


R = TypeVar("R", bound="TransferResult")


@dataclass
class TransferResult:
    size: int
    completed: bool = False        # the receiver got everything and the FIN
    sha256_ok: bool = False
    received: int = 0
    virtual_seconds: float = 0.0   # from connect() to the receiver seeing EOF
    error: str = ""
    sender: dict = field(default_factory=dict)    # TcpSocket.stats() of the sender
    counters: dict = field(default_factory=dict)  # {"a": {...}, "b": {...}} nonzero counters
    decisions: dict = field(default_factory=dict)  # what the wire did, by event
    segments_a_to_b: int = 0
    segments_b_to_a: int = 0
    progress: list = field(default_factory=list)  # (virtual ns since connect, bytes received)

    def goodput_after(self, omit: float) -> float:
        """Goodput (bit/s) leaving out the first ``omit`` seconds, like iperf3 -O: the
        steady state without the slow-start ramp."""
        start = None
        for t, n in self.progress:
            if t >= omit * SEC:
                start = (t, n)
                break
        if start is None or not self.progress:
            return 0.0
        t_end, n_end = self.progress[-1]
        return (n_end - start[1]) * 8 / ((t_end - start[0]) / SEC) if t_end > start[0] else 0.0

    @property
    def goodput_bps(self) -> float:
        return self.received * 8 / self.virtual_seconds if self.virtual_seconds else 0.0

    def extended(self, cls: type[R]) -> R:
        """This result as a ``cls``: a lab's subclass whose own fields (with defaults) it
        then fills in from what it watched during the run."""
        return cls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


def run_transfer(size: int, *, seed: int = 1, tcp: dict | None = None, server_tcp: dict | None = None,
                 host_mtu: int = 1500, check_fcs: bool = True, deadline: float = 600.0,
                 writes: int | None = None, write_interval: float = 0.0, log_events: bool = True,
                 host_tcp: dict | None = None, count_segments: bool = True, net_setup=None,
                 offload: bool = False, rx_hold_us: float = 0.0, **link) -> TransferResult:
    """Send ``size`` random bytes from a to b over a link with ``link`` parameters (those of
    :meth:`Network.link`). ``tcp`` are socket options for both ends (``server_tcp`` overrides
    the receiver's); ``host_tcp`` sets host-wide TcpConfig fields (those that act before a
    segment is matched to a socket, like ``verify_checksum``). ``writes``/``write_interval`` split the data into that many writes spaced
    in time (an interactive sender). ``offload`` gives both NICs TSO and GRO (``rx_hold_us``:
    their receive batching, see :meth:`SimHost.add_interface`). ``deadline`` (virtual seconds) stops a stalled transfer."""
    res = TransferResult(size)
    net = Network(seed=seed, log_events=log_events)
    def config():
        return HostConfig(tcp=TcpConfig().replace(**host_tcp)) if host_tcp else None

    nic = dict(mtu=host_mtu, check_fcs=check_fcs, offload=offload, rx_hold_us=rx_hold_us)
    a = net.host("a", "198.18.0.1/24", config=config(), **nic)
    b = net.host("b", "198.18.0.2/24", config=config(), **nic)
    link.setdefault("mtu", None)  # the hosts' MTU is the limit; the link carries what they send
    wire = net.link(a, b, **link)
    if net_setup is not None:
        net_setup(net, wire)

    def count(now, frame):
        if frame[12:14] == b"\x08\x00" and frame[23] == 6:
            if frame[6:12] == a.nics[0].mac:
                res.segments_a_to_b += 1
            else:
                res.segments_b_to_a += 1

    if count_segments:
        wire.add_tap(count)
    watch = observe.attach(net, wire, title="transfer")
    data_rng = random.Random(f"transfer:{seed}")
    sent_hash = hashlib.sha256()
    client_opts = dict(tcp or {})
    server_opts = dict(client_opts, **(server_tcp or {}))

    servers = []
    t0 = 0

    async def main():
        got = asyncio.get_running_loop().create_future()
        h = hashlib.sha256()

        async def sink(reader, writer):
            progress = res.progress
            while data := await reader.read(1 << 20):
                h.update(data)
                res.received += len(data)
                progress.append((net.now - t0, res.received))
            got.set_result(h.hexdigest())
            writer.close()

        nonlocal t0
        server = await b.start_server(sink, 5001, **server_opts)
        servers.append(server)
        t0 = net.now
        reader, writer = await a.open_connection("198.18.0.2", 5001, **client_opts)
        sock = writer.get_extra_info("socket")
        try:
            # The payload is made as it is sent (seeded, 1 MiB at a time at most), so memory
            # stays bounded however long the transfer.
            step = min(-(-size // (writes or 1)), 1 << 20)
            for off in range(0, size, step):
                chunk = data_rng.randbytes(min(step, size - off))
                sent_hash.update(chunk)
                writer.write(chunk)
                if write_interval:
                    await asyncio.sleep(write_interval)
                await writer.drain()
            writer.write_eof()
            digest = await got
            res.completed = True
            res.sha256_ok = digest == sent_hash.hexdigest()
        finally:
            res.virtual_seconds = (net.now - t0) / SEC
            res.sender = sock.stats()
        writer.close()
        server.close()

    run_transfer_task(net, main(), res, size, deadline, servers)
    res.counters = {"a": a.counters.nonzero(), "b": b.counters.nonzero()}
    tally: dict[str, int] = {}
    for e in net.decisions.entries:
        tally[e["event"]] = tally.get(e["event"], 0) + 1
    res.decisions = tally
    observe.finish(watch, res)
    net.close()
    return res


def run_transfer_task(net, coro, res: TransferResult, size: int, deadline: float, servers) -> None:
    """Run a transfer's coroutine to its end or ``deadline`` (virtual seconds); a stall or a
    socket error becomes ``res.error``. The receivers still waiting are ended before the
    caller closes the network."""
    try:
        net.run(coro, timeout=deadline)
    except asyncio.TimeoutError:
        res.error = f"stalled: {res.received} of {size} bytes after {deadline:g} s"
    except OSError as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    for server in servers:  # a stalled receiver is still waiting: end it before closing
        for task in list(server.tasks):
            task.cancel()
        if server.tasks:
            net.run(asyncio.sleep(0))
