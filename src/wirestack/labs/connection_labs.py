"""Labs on a connection's life: the three-way handshake and close (narrated), TIME_WAIT
against an old duplicate, and the request/response stalls of Nagle with delayed ACKs."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import statistics
from dataclasses import dataclass, field

from ..runtime.sim import Network
from ..sim import Fault
from ..trace.record import RunRecorder
from ..units import MS, SEC
from . import observe
from .lab import Lab, conclusion, ratio


def _is_syn(f) -> bool:
    return f.tcp is not None and f.tcp.syn and not f.tcp.ack_flag


# -- handshake ------------------------------------------------------------------------------

@dataclass
class HandshakeResult:
    lose_syn: bool
    connect_ms: float = 0.0
    syns: int = 0
    rtos: int = 0
    close_ms: float = 0.0
    reply: str = ""
    steps: list = field(default_factory=list)


MEANING = {
    "S": "{src} asks to open a connection; its initial sequence number (ISN) is {seq_abs}, shown as 0",
    "S.": "{src} accepts and sends its own ISN ({seq_abs}); Ack=1 says it got the SYN (a SYN counts as one byte)",
    "FP.": "{src} sends its last {len} byte(s) and FIN: it has nothing more to send",
    "F.": "{src} has nothing more to send (FIN, counted as one byte)",
}


def _step_text(f: dict) -> str:
    t = f["headers"]["TCP"]
    text = MEANING.get(t["flags"])
    if text is None:
        if t["len"]:
            text = "{src} sends {len} byte(s) of data"
        elif t["ack"] == 1 and t["seq"] == 1:
            text = "{src} acknowledges the SYN-ACK: the connection is open both ways"
        else:
            text = "{src} acknowledges everything up to byte {ack}"
    line = text.format(src=f["src"], seq_abs=t["seq_abs"], len=t["len"], ack=t["ack"])
    if f["fate"] == "lost":
        line += f" -- LOST on the wire ({f['reason'].removeprefix('lost: ')})"
    return f"{f['t'] / SEC:8.3f} s  {f['src']} -> {f['dst']}  {f['label']}\n{'':12}{line}"


def handshake_run(seed: int, lose_syn: bool) -> HandshakeResult:
    res = HandshakeResult(lose_syn)
    net = Network(seed=seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=10 + random.Random(f"hs:{seed}").random() * 10, rate_mbps=10)
    if lose_syn:
        link.add_fault(Fault("drop", match=_is_syn, nth=1, name="the first SYN"))
    rec = RunRecorder(net, title="handshake")
    watch = observe.attach(net, link, title="first SYN lost" if lose_syn else "clean wire")

    async def main():
        async def echo(reader, writer):
            writer.write(b"hello, " + await reader.read(100))
            await writer.drain()
            writer.close()
        await b.start_server(echo, 7)
        await asyncio.sleep(0.1)          # ARP settles first: the story is TCP's
        t0 = net.now
        reader, writer = await a.open_connection("198.18.0.2", 7)
        res.connect_ms = (net.now - t0) / 1e6
        writer.write(b"world")
        writer.write_eof()
        res.reply = (await reader.read()).decode()
        writer.close()
        await writer.wait_closed()
        res.close_ms = (net.now - t0) / 1e6

    net.run(main())
    net.settle()
    data = rec.data()
    tcp = [f for f in data["frames"] if f["proto"] == "TCP"]
    res.syns = sum(1 for f in tcp if f["headers"]["TCP"]["flags"] == "S")
    res.rtos = a.counters.get("tcp.rto_timeouts", 0)
    items = [(f["t"], 0, _step_text(f)) for f in tcp]
    for e in data["events"]:
        # (connect() and listen() are left out: those events carry the host's last clock
        # reading, not the moment the application called them.)
        if e["kind"] in ("state", "rto") and e["conn"] and not e["conn"].endswith(">*") \
                and "CLOSED →" not in e["text"]:
            items.append((e["t"], 1, f"{e['t'] / SEC:8.3f} s  {e['host']}: {e['text']}"))
    res.steps = [text for _, _, text in sorted(items, key=lambda x: (x[0], x[1]))]
    observe.finish(watch, res)
    net.close()
    return res


def _handshake(seed):
    return [("clean wire", handshake_run(seed, False)), ("first SYN lost", handshake_run(seed, True))]


def _handshake_lesson(clean, lost):
    steps = "\n    ".join(s.replace("\n", "\n    ") for s in lost.steps)
    return (f"on a clean wire connect() returned after {clean.connect_ms:.1f} ms (one round trip). When "
            f"the first SYN was lost, a heard nothing, its retransmission timer fired "
            f"({lost.rtos} RTO) and it sent the SYN again ({lost.syns} SYNs in all): connect() took "
            f"{lost.connect_ms:.1f} ms, {ratio(lost.connect_ms, clean.connect_ms)} as long, because the first "
            f"RTO is 1 s before any RTT is known (RFC 6298 §2.1). Step by step, with the lost SYN:\n\n    "
            + steps)


HANDSHAKE = Lab(
    "handshake", "The three-way handshake and close, step by step",
    "How does a connection open and close, and what happens when the first SYN is lost?", _handshake,
    ("reply", "connect", "SYNs sent", "rto fired", "open to closed"),
    "SYN, SYN-ACK, ACK: each side tells the other its initial sequence number and hears it "
    "acknowledged (RFC 9293 §3.5). Closing takes a FIN and an ACK in each direction; the side that "
    "closes first waits in TIME_WAIT. A lost SYN is repeated only when the retransmission timer fires.",
    conclude=lambda runs: conclusion(runs, _handshake_lesson),
    extra_columns={"reply": lambda r: repr(r.reply), "connect": lambda r: f"{r.connect_ms:.1f} ms",
                   "SYNs sent": lambda r: str(r.syns), "rto fired": lambda r: str(r.rtos),
                   "open to closed": lambda r: f"{r.close_ms:.1f} ms"})


# -- time-wait ------------------------------------------------------------------------------

@dataclass
class TimeWaitResult:
    time_wait: bool
    sha256_ok: bool = False
    second_started_s: float = 0.0     # when the second connection could connect
    reuse_refused: str = ""           # the error the first bind/connect attempt got
    old_arrived_s: float = 0.0        # when the held-back segment of the first connection arrived
    old_seq: int = 0                  # its sequence number, relative to the *second* connection's ISN
    error: str = ""


PORT = 40000
SIZE = 60_000


def time_wait_run(seed: int, time_wait: bool) -> TimeWaitResult:
    """Two connections from the same port a:40000 to b:80, one after the other. One data
    segment of the first is held back 100 ms on the wire (a scripted delay fault), so it is
    still in flight when the first connection has closed."""
    res = TimeWaitResult(time_wait)
    net = Network(seed=seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=1, rate_mbps=100)
    rng = random.Random(f"time-wait:{seed}")
    nth = 14 + rng.randrange(6)     # which data segment of the first connection is held back
    link.add_fault(Fault("delay", match=lambda f: f.tcp is not None and len(f.payload) > 0,
                         nth=nth, delay=100 * MS, name="old duplicate"), direction="a>b")
    watch = observe.attach(net, link, title="TIME_WAIT on" if time_wait else "TIME_WAIT off")
    # Timestamps off: PAWS (RFC 7323 §5) would otherwise reject the old segment by its
    # timestamp, a second line of defence this lab is not about.
    opts = {"timestamps": False, "time_wait": time_wait}
    data = [rng.randbytes(SIZE) for _ in range(2)]
    got: list = []

    async def main():
        async def sink(reader, writer):
            h = hashlib.sha256()
            while chunk := await reader.read(65536):
                h.update(chunk)
            got.append(h.hexdigest())
            writer.close()
        await b.start_server(sink, 80, **opts)
        # The first connection: a fast bulk transfer, closed by a (a holds TIME_WAIT).
        reader, writer = await a.open_connection("198.18.0.2", 80, local_addr=("0.0.0.0", PORT), **opts)
        writer.write(data[0])
        writer.write_eof()
        await writer.drain()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        # The second one, same port: at once if the stack allows, else when TIME_WAIT ends.
        probe = a.host.tcp_socket(**opts)
        try:
            probe.bind(("0.0.0.0", PORT))
            probe.connect(("198.18.0.2", 80))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            res.reuse_refused = f"{exc.strerror}: a is in TIME_WAIT"
        probe.abort() if probe.state != "CLOSED" else probe.close()
        while a.host.tcp.connection_count():
            await asyncio.sleep(1)
        reader, writer = await a.open_connection("198.18.0.2", 80, local_addr=("0.0.0.0", PORT), **opts)
        res.second_started_s = net.now / SEC
        # An interactive sender: 1000 bytes every 10 ms.
        view = memoryview(data[1])
        for off in range(0, SIZE, 1000):
            writer.write(view[off:off + 1000])
            await asyncio.sleep(0.01)
        writer.write_eof()
        await writer.drain()
        await reader.read()
        writer.close()

    try:
        net.run(main(), timeout=600)
    except (OSError, asyncio.TimeoutError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    fault = [e for e in net.decisions.filter(event="fault")]
    if fault:
        res.old_arrived_s = (fault[0]["t"] + 100 * MS) / SEC
    res.sha256_ok = len(got) == 2 and got[1] == hashlib.sha256(data[1]).hexdigest()
    if len(got) == 2 and not res.sha256_ok:
        res.error = res.error or "the second connection's data is corrupted"
    observe.finish(watch, res)
    net.close()
    return res


def _time_wait(seed):
    return [("TIME_WAIT on (2·MSL = 60 s)", time_wait_run(seed, True)),
            ("TIME_WAIT off", time_wait_run(seed, False))]


def _tw_lesson(on, off):
    if off.sha256_ok:
        effect = ("this time the old segment fell outside the new connection's window and was "
                  "dropped: try another --seed")
    else:
        effect = ("the old segment's sequence number fell inside the new connection's window (same "
                  "ports, and an ISN only a few thousand ticks of the 4 µs clock later), so b took its "
                  "bytes as the new connection's: " + (off.error or "corrupted data"))
    return (f"with TIME_WAIT a could not reuse port {PORT} at once ({on.reuse_refused or 'refused'}); the "
            f"second connection started at {on.second_started_s:.3f} s, long after the held-back segment "
            f"of the first had arrived ({on.old_arrived_s:.3f} s) and been answered by the TIME_WAIT "
            f"state: data {'intact' if on.sha256_ok else 'CORRUPTED'}. Without TIME_WAIT the second "
            f"connection started at {off.second_started_s:.3f} s, the old segment arrived at "
            f"{off.old_arrived_s:.3f} s in the middle of it, and {effect}.")


TIME_WAIT = Lab(
    "time-wait", "TIME_WAIT: why the closing side waits 2·MSL",
    "A segment of an old connection is still in flight when a new one reuses the same ports.",
    _time_wait,
    ("result", "second connection at", "old segment arrived"),
    "The side that closes first keeps the connection's ports for twice the maximum segment "
    "lifetime (RFC 9293 §3.6.1), so no segment of the old incarnation can still be on the network "
    "when a new connection with the same four numbers starts. Without the wait, an old duplicate "
    "whose sequence number happens to fit the new window is accepted as new data.",
    conclude=lambda runs: conclusion(runs, _tw_lesson),
    extra_columns={"result": lambda r: "sha256 ok" if r.sha256_ok else (r.error or "failed"),
                   "second connection at": lambda r: f"{r.second_started_s:.3f} s",
                   "old segment arrived": lambda r: f"{r.old_arrived_s:.3f} s"})


# -- Nagle + delayed ACK --------------------------------------------------------------------

@dataclass
class RpcResult:
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list = field(default_factory=list)

    @property
    def stalls(self) -> int:
        return sum(1 for x in self.latencies_ms if x > 30)


def rpc_run(seed: int, nodelay: bool, delayed_ack: bool, requests: int = 20) -> RpcResult:
    """Request/response: the client writes a 10-byte header, computes for 0.5 ms, writes a
    100-byte body, then reads the 100-byte answer (the write-write-read pattern)."""
    res = RpcResult(requests)
    net = Network(seed=seed)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=5, jitter_ms=0.5, rate_mbps=100)
    watch = observe.attach(net, link, title=f"nodelay={nodelay} delayed_ack={delayed_ack}")

    async def main():
        async def server(reader, writer):
            try:
                while True:
                    await reader.readexactly(110)
                    writer.write(bytes(100))
                    await writer.drain()
            except asyncio.IncompleteReadError:
                writer.close()
        await b.start_server(server, 80, delayed_ack=delayed_ack)
        reader, writer = await a.open_connection("198.18.0.2", 80, nodelay=nodelay)
        t0 = net.now
        for _ in range(requests):
            t = net.now
            writer.write(bytes(10))
            await asyncio.sleep(0.0005)
            writer.write(bytes(100))
            await reader.readexactly(100)
            res.latencies_ms.append((net.now - t) / 1e6)
        res.seconds = (net.now - t0) / SEC
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.5)        # the server sees EOF and closes too

    net.run(main(), timeout=120)
    observe.finish(watch, res)
    net.close()
    return res


def _nagle_delack(seed):
    return [("Nagle + delayed ACK", rpc_run(seed, nodelay=False, delayed_ack=True)),
            ("nodelay on the client", rpc_run(seed, nodelay=True, delayed_ack=True)),
            ("delayed ACK off on the server", rpc_run(seed, nodelay=False, delayed_ack=False))]


def _nd_lesson(both, nodelay, noack):
    return (f"with both on, {both.stalls} of {both.requests} requests stalled; the median request took "
            f"{statistics.median(both.latencies_ms):.1f} ms on a 10 ms round trip: the body waited for "
            f"the ACK of the header (Nagle) and the server held that ACK for its delayed-ACK timer "
            f"(200 ms here, 40 ms on Linux), since it had nothing to send yet. With nodelay: median "
            f"{statistics.median(nodelay.latencies_ms):.1f} ms; with immediate ACKs: median "
            f"{statistics.median(noack.latencies_ms):.1f} ms. The {both.requests} requests took "
            f"{both.seconds:.2f} s, {nodelay.seconds:.2f} s and {noack.seconds:.2f} s.")


NAGLE_DELAYED_ACK = Lab(
    "nagle-delayed-ack", "Nagle meets delayed ACK: the request/response stall",
    "A client writes a request in two small pieces, then waits for the answer. Why 200 ms?",
    _nagle_delack,
    ("time", "median request", "slowest request", "stalls > 30 ms"),
    "Nagle holds a small segment while earlier data is unacknowledged; the receiver delays its "
    "ACK hoping to piggyback it on an answer it cannot give until the whole request is there. "
    "Each waits for the other until the delayed-ACK timer ends the deadlock (RFC 1122 §4.2.3.2, "
    "§4.2.3.4). Write the request in one piece, or set TCP_NODELAY.",
    conclude=lambda runs: conclusion(runs, _nd_lesson),
    extra_columns={"time": lambda r: f"{r.seconds:.2f} s",
                   "median request": lambda r: f"{statistics.median(r.latencies_ms):.1f} ms",
                   "slowest request": lambda r: f"{max(r.latencies_ms):.1f} ms",
                   "stalls > 30 ms": lambda r: f"{r.stalls}/{r.requests}"})
