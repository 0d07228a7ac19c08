"""The demo: two hosts on an unreliable simulated wire — ARP, ping, UDP, and a TCP transfer
checked end to end by sha256. It is what `wirestack demo` runs."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections import Counter as Tally
from dataclasses import dataclass, field

from ..apps.ping import ping
from ..runtime.sim import Network
from . import observe
from ..trace.marked import MarkedTrace
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
    on_trace: object = None             # fn(line): every frame, tcpdump style, as it happens
    on_progress: object = None          # fn(bytes sent, total) during the TCP transfer
    absolute_seqs: bool = False         # trace: absolute TCP sequence numbers (tcpdump -S)

    def inputs(self) -> dict:
        """What the run was asked to do, with units in the names (for --json)."""
        return {"seed": self.seed, "size_bytes": self.size, "loss": self.loss,
                "delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "reorder": self.reorder,
                "duplicate": self.duplicate, "corrupt": self.corrupt,
                "rate_mbps": self.rate_mbps, "check_fcs": self.check_fcs, "pcap": self.pcap}


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
    ping_rtts_ms: list = field(default_factory=list)
    handshake: list = field(default_factory=list)     # trace lines of the TCP open and close
    notes: list = field(default_factory=list)         # costly losses: a SYN, an ARP request
    wire_retransmissions: int | None = None   # segments the plot saw sent again (with --plot)

    def as_json(self, opt: "DemoOptions | None" = None) -> dict:
        """The figures, units in the key names, ``null`` for "no error"."""
        d = dict(self.__dict__)
        for key in ("ping_lines", "trace_head", "handshake"):
            d.pop(key, None)
        d["size_bytes"] = d.pop("bytes")
        d["error"] = self.error or None
        d["tcp_stats"] = tcp_stats_with_units(self.tcp_stats)
        if opt is not None:
            d["inputs"] = opt.inputs()
        return d


INFINITE_SSTHRESH = 1 << 30   # above any real window: ssthresh still "arbitrarily high" (RFC 5681 §3.1)


def tcp_stats_with_units(st: dict) -> dict:
    """sock.stats() for people: times in ms (they are ns), sizes in bytes, an ssthresh that
    was never set is null instead of 2**62."""
    out = {}
    for k, v in st.items():
        if k in ("srtt", "rttvar", "rto", "last_rtt"):
            out[k + "_ms"] = None if v is None else v / 1e6
        elif k in ("cwnd", "ssthresh", "snd_wnd", "rcv_wnd", "snd_mss", "peer_mss",
                   "sacked_bytes", "unacked", "send_queue", "recv_queue", "ooo_bytes"):
            out[k + "_bytes"] = None if (k == "ssthresh" and v >= INFINITE_SSTHRESH) else v
        else:
            out[k] = v
    return out


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
    kinds: Tally = Tally()
    head: list[str] = []
    syn_seen: list = []  # (time, lost) of every SYN a sent
    arp_lost: list = []  # times of lost ARP requests
    phase = [None]       # "ack": the next TCP frame completes an open or a close

    def on_line(now, line, fates) -> None:
        res.frames += 1
        kinds[_kind(line)] += 1
        lost = "dropped_loss" in fates
        if " > 198.18.0.2." in line and "Flags [S]" in line:
            syn_seen.append((now, lost))
        if lost and "ARP, Request" in line:
            arp_lost.append(now)
        if len(head) < 40:
            head.append(line)
        if ".5001" in line and "Flags [" in line and len(res.handshake) < 16:
            # The TCP connection's opening (SYN, SYN-ACK, the ACK after them) and closing
            # (each FIN and the ACK after it): what a learner looks for first.
            if "Flags [S" in line or "Flags [F" in line:
                res.handshake.append(line)
                phase[0] = "ack"
            elif phase[0] == "ack":
                res.handshake.append(line)
                phase[0] = None
        if opt.on_trace is not None:
            opt.on_trace(line)

    on_frame = MarkedTrace(net.decisions, on_line, relative=not opt.absolute_seqs)

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
        echo = await ping(a, "198.18.0.2", count=opt.pings, interval=0.2, timeout=1.0,
                          on_line=res.ping_lines.append)
        res.ping_transmitted, res.ping_received = echo.transmitted, echo.received
        res.ping_rtts_ms = list(echo.rtts_ms)

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
        res.udp_closed_port_error = (_describe_os_error(closed.errors[0]) if closed.errors
                                     else "no answer (lost on the wire)")
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
            if opt.on_progress is not None:
                opt.on_progress(min(off + 65536, len(payload)), len(payload))
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
    on_frame.flush()
    res.virtual_seconds = net.now / SEC
    # One definition everywhere (text, --json, the plot): every segment host a sent again,
    # SYNs included, i.e. its tcp.retrans_segs counter. The socket's own figure is gone
    # when the connection failed, the counter is not.
    res.retransmissions = a.counters["tcp.retrans_segs"]
    res.notes = _costly_losses(syn_seen, arp_lost)
    if res.transfer_seconds:
        res.goodput_mbps = opt.size * 8 / res.transfer_seconds / 1e6
    res.frame_kinds = dict(sorted(kinds.items()))
    res.trace_head = head
    res.decisions = dict(sorted(Tally(e["event"] for e in net.decisions.entries).items()))
    res.counters = {"a": a.counters.nonzero(), "b": b.counters.nonzero()}
    res.state_left = {"a": a.host.tcp.connection_count(), "b": b.host.tcp.connection_count()}
    if recorder is not None:
        res.wire_retransmissions = (sum(1 for seg in recorder.segments if seg[3])
                                    + recorder.control_retransmissions)
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


def _describe_os_error(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"{text} (b answered with ICMP port unreachable)"
    return text


def _costly_losses(syns: list, arp_lost: list) -> list[str]:
    """Sentences about the losses that cost a whole timeout: a SYN (no RTT estimate yet, so
    the initial RTO of 1 s, doubled on each retry, RFC 6298 §2.1 and §5.5) and an ARP
    request (retried after 1 s)."""
    notes = []
    lost = [t for t, gone in syns if gone]
    if lost:
        through = [t for t, gone in syns if not gone and t > lost[0]]
        cost = (f"{(through[0] - lost[0]) / SEC:.1f} s before a SYN got through" if through
                else "the connection: no SYN got through")
        notes.append(f"{len(lost)} of {len(syns)} SYNs were lost (the first at {lost[0] / SEC:.3f} s): "
                     f"each waits for a retransmission timeout, 1 s before any RTT is measured and "
                     f"doubled on every retry (RFC 6298 §2.1, §5.5); that cost {cost}")
    if arp_lost:
        notes.append(f"{len(arp_lost)} ARP request{'s were' if len(arp_lost) > 1 else ' was'} lost "
                     f"(the first at {arp_lost[0] / SEC:.3f} s): the packets waiting for an answer "
                     "were held until the retry 1 s later")
    return notes


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
