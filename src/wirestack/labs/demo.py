"""The demo: two hosts on an unreliable simulated wire — ARP, ping, UDP, and a TCP transfer
checked end to end by sha256. It is what `wirestack demo` runs."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections import Counter as Tally
from dataclasses import dataclass, field

from ..runtime.sim import Network
from . import observe
from ..trace.text import TextTrace
from ..units import SEC


@dataclass
class DemoOptions:
    seed: int = 1
    size: int = 1_000_000
    loss: float = 0.02
    delay_ms: float = 5.0
    jitter_ms: float = 1.0
    reorder: float = 0.02
    duplicate: float = 0.01
    corrupt: float = 0.0
    check_fcs: bool = True
    rate_mbps: float | None = 100.0
    pcap: str | None = "demo.pcap"
    plot: str | None = None
    pings: int = 5
    decisions_path: str | None = None   # the wire's decision log, JSON lines
    events_path: str | None = None      # both hosts' event logs (TCP states, RTOs, cwnd...), JSON lines
    tcp_options: dict = field(default_factory=dict)


@dataclass
class DemoResult:
    sha256_ok: bool = False
    sha256_sent: str = ""
    sha256_received: str = ""
    bytes: int = 0
    transfer_seconds: float = 0.0
    goodput_mbps: float = 0.0
    retransmissions: int = 0
    ping_transmitted: int = 0
    ping_received: int = 0
    ping_lines: list = field(default_factory=list)
    udp_sent: int = 0
    udp_echoed: int = 0
    udp_closed_port_error: str = ""
    frames: int = 0
    frame_kinds: dict = field(default_factory=dict)
    trace_head: list = field(default_factory=list)
    decisions: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
    tcp_stats: dict = field(default_factory=dict)
    error: str = ""
    virtual_seconds: float = 0.0
    state_left: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        d = dict(self.__dict__)
        d.pop("ping_lines", None)
        d.pop("trace_head", None)
        return d


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self):
        self.received: list[bytes] = []
        self.errors: list[OSError] = []

    def datagram_received(self, data, addr):
        self.received.append(data)

    def error_received(self, exc):
        self.errors.append(exc)


def run_demo(opt: DemoOptions) -> DemoResult:
    res = DemoResult(bytes=opt.size)
    net = Network(seed=opt.seed)
    a = net.host("a", "198.18.0.1/24", check_fcs=opt.check_fcs)
    b = net.host("b", "198.18.0.2/24", check_fcs=opt.check_fcs)
    link = net.link(a, b, delay_ms=opt.delay_ms, jitter_ms=opt.jitter_ms, loss=opt.loss,
                    reorder=opt.reorder, duplicate=opt.duplicate, corrupt=opt.corrupt,
                    rate_mbps=opt.rate_mbps, jitter_dist="uniform")
    tracer = TextTrace()
    kinds: Tally = Tally()
    head: list[str] = []

    def on_frame(now, frame):
        res.frames += 1
        line = tracer.format(frame, now)
        kinds[_kind(line)] += 1
        if len(head) < 40:
            head.append(line)

    link.add_tap(on_frame)
    watch = observe.attach(net, link, title="demo", own_capture=True)
    if opt.pcap:
        net.capture(opt.pcap, observe.capture_point(net, link))

    recorder = None
    if opt.plot:
        from ..trace.plot import ConnectionRecorder
        recorder = ConnectionRecorder(net, link, a, b)

    payload = random.Random(f"demo:{opt.seed}").randbytes(opt.size)
    sent_digest = hashlib.sha256(payload).hexdigest()
    res.sha256_sent = sent_digest

    async def main():
        # 1. ping: the first request waits in the ARP queue, it is not lost.
        ping = await a.ping("198.18.0.2", count=opt.pings, interval=0.2, timeout=1.0,
                            on_line=res.ping_lines.append)
        res.ping_transmitted, res.ping_received = ping.transmitted, ping.received

        # 2. UDP: an echo service, then a datagram to a closed port (ICMP port unreachable).
        await b.create_datagram_endpoint(_UdpEcho, local_addr=("0.0.0.0", 7))
        tr, client = await a.create_datagram_endpoint(_UdpClient, remote_addr=("198.18.0.2", 7))
        for i in range(5):
            tr.sendto(b"datagram %d" % i)
            res.udp_sent += 1
        await asyncio.sleep(0.5)
        res.udp_echoed = len(client.received)
        tr.close()
        tr2, closed = await a.create_datagram_endpoint(_UdpClient, remote_addr=("198.18.0.2", 9))
        for _ in range(3):  # the wire may lose one; the error comes back for any of them
            tr2.sendto(b"anyone there?")
            await asyncio.sleep(0.2)
            if closed.errors:
                break
        res.udp_closed_port_error = repr(closed.errors[0]) if closed.errors else "none (lost on the wire)"
        tr2.close()

        # 3. TCP: a sends, b hashes what arrives and answers with the digest.
        done = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            writer.write(h.hexdigest().encode())
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            if not done.done():
                done.set_result((n, h.hexdigest()))

        server = await b.start_server(sink, 5001, **opt.tcp_options)
        t0 = net.now
        reader, writer = await a.open_connection("198.18.0.2", 5001, **opt.tcp_options)
        sock = writer.get_extra_info("socket")
        view = memoryview(payload)
        for off in range(0, len(payload), 65536):
            writer.write(view[off:off + 65536])
            await writer.drain()
        writer.write_eof()
        reply = await reader.read()
        n, digest = await done
        res.transfer_seconds = (net.now - t0) / SEC
        res.sha256_received = reply.decode(errors="replace")
        res.sha256_ok = reply.decode(errors="replace") == sent_digest and digest == sent_digest
        writer.close()
        await writer.wait_closed()
        res.tcp_stats = sock.stats()
        server.close()

    try:
        net.run(main(), timeout=3600)
    except (OSError, asyncio.TimeoutError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    # Let TIME_WAIT and every retransmission run out, so we can show nothing is left.
    net.settle(limit=600)
    res.virtual_seconds = net.now / SEC
    res.retransmissions = int(res.tcp_stats.get("retransmits", 0))
    if res.transfer_seconds:
        res.goodput_mbps = opt.size * 8 / res.transfer_seconds / 1e6
    res.frame_kinds = dict(sorted(kinds.items()))
    res.trace_head = head
    res.decisions = dict(sorted(Tally(e["event"] for e in net.decisions.entries).items()))
    res.counters = {"a": a.counters.nonzero(), "b": b.counters.nonzero()}
    res.state_left = {"a": a.host.tcp.connection_count(), "b": b.host.tcp.connection_count()}
    if recorder is not None:
        recorder.plot(opt.plot)
    if opt.decisions_path:
        net.decisions.to_jsonl(opt.decisions_path)
    if opt.events_path:
        with open(opt.events_path, "w") as f:
            a.log.to_jsonl(f)
            b.log.to_jsonl(f)
    observe.finish(watch, res, rerun=lambda **change: run_demo(dataclasses.replace(
        opt, pcap=None, plot=None, decisions_path=None, events_path=None, **change)))
    net.close()
    return res


def _kind(line: str) -> str:
    if " ARP," in line:
        return "ARP"
    if "ICMP" in line:
        return "ICMP"
    if "UDP" in line:
        return "UDP"
    if "Flags [" in line:
        return "TCP"
    if "malformed" in line:
        return "malformed"
    return "other"
