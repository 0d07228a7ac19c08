"""Linux and wirestack processes on one `wirestack wire`, as separate OS processes.

Each test starts its own `wirestack wire`; the namespaces of its `tap:` ports are named
after this test process (ws-w<tag>-<pid>), created by the wire and checked gone after it
exits (deleted here too, by name, if a test fails half-way). Addresses: 198.18.0.0/15 only.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import interop_skip_reason, require_tools

pytestmark = pytest.mark.interop
_reason = interop_skip_reason()
if _reason:
    pytestmark = [pytest.mark.interop, pytest.mark.skip(reason=_reason)]

PID = os.getpid()
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
ENV = dict(os.environ, PYTHONPATH=SRC)
WS = [sys.executable, "-m", "wirestack"]
CHECKSUM_OPTS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                 "-o", "udp.check_checksum:TRUE"]
BAD_FILTER = '_ws.malformed || _ws.expert.severity >= error || icmp.checksum.status == "Bad"'


def ns_name(tag: str) -> str:
    return f"ws-w{tag}-{PID}"


def ns_exists(name: str) -> bool:
    return os.path.exists(f"/var/run/netns/{name}")


def in_ns(name, argv, timeout=60, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(["ip", "netns", "exec", name, *argv], timeout=timeout, **kw)


class Proc:
    """A wirestack process whose stdout lines arrive on a queue."""

    def __init__(self, *args: str, stdin=None):
        self.proc = subprocess.Popen([*WS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=stdin, text=True, env=ENV)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pred, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such line in {timeout} s; seen {self.seen}; "
                                     f"stderr {self.proc.stderr.read() if self.proc.poll() is not None else ''}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if pred(line):
                return line

    def counters(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        line = self.wait_line(lambda s: s.startswith("counters "))
        return json.loads(line[len("counters "):])

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def cleanup():
    """Processes and namespaces to remove at teardown, whatever happened."""
    procs: list[Proc] = []
    names: list[str] = []
    yield procs, names
    for p in reversed(procs):
        p.stop()
    for n in names:
        if ns_exists(n):
            subprocess.run(["ip", "netns", "delete", n], capture_output=True)


def start_wire(cleanup, *args: str) -> Proc:
    procs, _ = cleanup
    w = Proc("wire", *args)
    procs.append(w)
    w.wait_line(lambda s: s == "ready")
    return w


def tshark_bad(pcap: str, *extra: str) -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", pcap, *CHECKSUM_OPTS, *extra, "-Y", BAD_FILTER,
                           "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


# -- Linux <-> Linux across the lossy wire ------------------------------------------------------

def test_linux_ping_across_lossy_wire_agrees_with_decision_log(cleanup, tmp_path):
    require_tools("ping")
    a, b = ns_name("a"), ns_name("b")
    cleanup[1].extend([a, b])
    pcap, dec = str(tmp_path / "w.pcap"), str(tmp_path / "d.jsonl")
    w = start_wire(cleanup, "--loss", "0.2", "--seed", "5", "--pcap", pcap, "--decisions", dec,
                   "--port", f"tap:{a}:198.18.0.1/24", "--port", f"tap:{b}:198.18.0.2/24")
    # Resolve ARP first (retrying through the loss) so the count is about echo frames only.
    for _ in range(20):
        if in_ns(a, ["ping", "-c", "1", "-W", "0.5", "198.18.0.2"]).returncode == 0:
            break
    r = in_ns(a, ["ping", "-c", "200", "-i", "0.01", "-W", "1", "198.18.0.2"], timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    sent, got = int(m.group(1)), int(m.group(2))
    loss = 1 - got / sent
    assert sent == 200 and 0.24 <= loss <= 0.48, r.stdout   # 1 - 0.8 * 0.8 = 36%
    received = {int(s) for s in re.findall(r"icmp_seq=(\d+)", r.stdout)}
    assert w.stop() == 0
    assert not ns_exists(a) and not ns_exists(b)          # the wire removed what it made
    assert "wire0" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout

    # Frame by frame: the n-th frame the medium saw (pcap) is the n-th "arrived" entry.
    from wirestack.trace.pcap import PcapReader
    with PcapReader(pcap) as rd:
        frames = [f for _, f in rd]
    entries = [json.loads(x) for x in open(dec)]
    arrived = [e for e in entries if e["event"] == "arrived"]
    dropped = {e["frame"] for e in entries if e["event"] == "dropped_loss"}
    assert len(arrived) == len(frames)
    fate: dict[tuple[int, int], bool] = {}         # (icmp type, seq) -> got through
    for e, f in zip(arrived, frames):
        if f[12:14] == b"\x08\x00" and f[23] == 1:     # IPv4, ICMP
            ihl = (f[14] & 15) * 4
            icmp = f[14 + ihl:]
            fate[(icmp[0], int.from_bytes(icmp[6:8], "big"))] = e["frame"] not in dropped
    # The echo requests of the main run have seq 1..200 and are the last 200 requests.
    expect = set()
    for seq in range(1, 201):
        req = fate.get((8, seq))
        rep = fate.get((0, seq))
        assert req is not None
        assert (rep is not None) == req           # the kernel answered exactly what arrived
        if req and rep:
            expect.add(seq)
    assert received == expect
    assert dropped <= {e["frame"] for e in arrived}   # every loss is of a frame that arrived


def test_linux_iperf3_across_one_percent_loss(cleanup):
    require_tools("iperf3")
    a, b = ns_name("c"), ns_name("d")
    cleanup[1].extend([a, b])
    start_wire(cleanup, "--loss", "0.01", "--delay", "5",
               "--port", f"tap:{a}:198.18.0.1/24", "--port", f"tap:{b}:198.18.0.2/24")
    srv = subprocess.Popen(["ip", "netns", "exec", b, "iperf3", "-s", "-1", "-B", "198.18.0.2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        r = in_ns(a, ["iperf3", "-c", "198.18.0.2", "-C", "reno", "-n", "2M", "-J"], timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        res = json.loads(r.stdout)
        assert res["end"]["sum_sent"]["bytes"] >= 2 * 1024 * 1024
        assert res["end"]["sum_sent"]["retransmits"] > 0          # the 1% loss was felt
        assert res["end"]["sender_tcp_congestion"] == "reno"
    finally:
        srv.kill()
        srv.wait()


# -- Linux curl <-> wirestack serve in another process ----------------------------------------

@pytest.mark.slow   # ~50 s: wirestack's TCP across 5% loss each way at 40 ms RTT
def test_curl_downloads_from_wirestack_serve_across_impaired_wire(cleanup, tmp_path):
    require_tools("curl", "tshark")
    a = ns_name("e")
    cleanup[1].append(a)
    sock = str(tmp_path / "w.sock")
    pcap = str(tmp_path / "w.pcap")
    www = tmp_path / "www"
    www.mkdir()
    body = os.urandom(5 * 1024 * 1024)
    (www / "blob").write_bytes(body)
    w = start_wire(cleanup, "--loss", "0.05", "--reorder", "0.1", "--delay", "20", "--seed", "2",
                   "--pcap", pcap, "--port", f"tap:{a}:198.18.0.1/24", "--port", f"unix:{sock}")
    s = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.2/24", "--http", f"8080:{www}")
    cleanup[0].append(s)
    s.wait_line(lambda x: x == "ready")
    out = tmp_path / "got"
    r = in_ns(a, ["curl", "-sS", "--max-time", "120", "-o", str(out), "http://198.18.0.2:8080/blob"],
              timeout=130)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
    c = w.counters()
    assert c["decisions"].get("dropped_loss", 0) > 50 and c["decisions"].get("reordered", 0) > 100
    s.stop()
    assert w.stop() == 0
    assert not os.path.exists(sock)
    assert tshark_bad(pcap) == []


# -- contention and faults between wirestack processes -----------------------------------------

def test_three_processes_on_a_csma_cd_hub(cleanup, tmp_path):
    """Three `wirestack nc` clients push data at once through a 10 Mbit/s CSMA/CD hub to a
    `wirestack serve --echo`: frames collide and back off, and every echo comes back intact."""
    sock = str(tmp_path / "hub.sock")
    dec = str(tmp_path / "d.jsonl")
    w = start_wire(cleanup, "--medium", "hub", "--csma-cd", "--rate", "10", "--decisions", dec,
                   "--port", f"unix:{sock}")
    s = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.2/24", "--echo", "7")
    cleanup[0].append(s)
    s.wait_line(lambda x: x == "ready")
    datas = [os.urandom(150_000) for _ in range(3)]
    clients = []
    for i in range(len(datas)):
        c = subprocess.Popen([*WS, "nc", "--wire", f"unix:{sock}", "--ip", f"198.18.0.{11 + i}/24",
                              "198.18.0.2", "7"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=ENV)
        clients.append(c)
    results = [None] * 3

    def feed(i):
        results[i] = clients[i].communicate(datas[i], timeout=60)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, c in enumerate(clients):
        assert c.returncode == 0, results[i][1]
        assert results[i][0] == datas[i]
    s.stop()
    assert w.stop() == 0
    events = [json.loads(x) for x in open(dec)]
    kinds = {e["event"] for e in events}
    assert "collision" in kinds and "backoff" in kinds
    colliders = {e["src"] for e in events if e["event"] == "collision"}
    assert len(colliders) >= 2


def test_kill9_of_one_process_leaves_the_wire_and_others_working(cleanup, tmp_path):
    sock = str(tmp_path / "w.sock")
    w = start_wire(cleanup, "--medium", "switch", "--port", f"unix:{sock}")
    s = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.2/24", "--echo", "7")
    victim = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.3/24", "--echo", "7")
    cleanup[0].extend([s, victim])
    s.wait_line(lambda x: x == "ready")
    victim.wait_line(lambda x: x == "ready")
    victim.proc.kill()
    victim.proc.wait()
    w.wait_line(lambda x: x.startswith("detached") and "peer disconnected" in x)
    c = subprocess.run([*WS, "nc", "--wire", f"unix:{sock}", "--ip", "198.18.0.9/24", "198.18.0.2", "7"],
                       input=b"still here\n", capture_output=True, env=ENV, timeout=30)
    assert c.returncode == 0 and c.stdout == b"still here\n", c.stderr
    assert w.counters()["ports"]["p0"]["closed_disconnected"] >= 2   # the victim and the nc


def test_garbage_client_is_disconnected_with_a_reason(cleanup, tmp_path):
    import socket
    sock = str(tmp_path / "w.sock")
    w = start_wire(cleanup, "--medium", "hub", "--port", f"unix:{sock}")
    good = socket.socket(socket.AF_UNIX)
    good.connect(sock)
    bad = socket.socket(socket.AF_UNIX)
    bad.connect(sock)
    w.wait_line(lambda x: x.startswith("attached p0#2"))
    bad.sendall(b"\xde\xad\xbe\xef" + b"GET / HTTP/1.0\r\n\r\n")
    line = w.wait_line(lambda x: x.startswith("detached"))
    assert line.startswith("detached p0#2") and "bad length prefix 3735928559" in line
    bad.settimeout(5)
    assert bad.recv(10) == b""
    good.sendall(b"\x00\x00\x00\x3c" + b"\xff" * 6 + b"\x02" + bytes(5) + b"\x88\xb5" + bytes(46))
    c = w.counters()
    assert c["ports"]["p0"]["closed_bad_length"] == 1 and c["ports"]["p0"]["rx_frames"] == 1


# -- pcap replay ----------------------------------------------------------------------------------

def test_pcap_replay_of_a_linux_ping_gets_echo_replies(cleanup, tmp_path):
    """Capture a Linux ping on one wire (kernel -> wirestack serve), replay the capture into a
    fresh wire with a wirestack host of the same address and MAC: it answers the echoes."""
    require_tools("ping")
    a = ns_name("f")
    cleanup[1].append(a)
    sock = str(tmp_path / "w.sock")
    first = str(tmp_path / "first.pcap")
    w = start_wire(cleanup, "--pcap", first, "--port", f"tap:{a}:198.18.0.1/24", "--port", f"unix:{sock}")
    s = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.2/24", "--mac", "02:00:00:00:00:02")
    cleanup[0].append(s)
    s.wait_line(lambda x: x == "ready")
    r = in_ns(a, ["ping", "-c", "5", "-i", "0.05", "198.18.0.2"])
    assert r.returncode == 0, r.stdout
    s.stop()
    w.stop()
    # Only what Linux sent: its ARP request and its echo requests.
    from wirestack.trace.pcap import PcapReader, PcapWriter
    linux = str(tmp_path / "linux.pcap")
    with PcapReader(first) as rd, PcapWriter(linux, nanosecond=True) as wr:
        kept = 0
        for ts, f in rd:
            if f[6:12] != bytes.fromhex("020000000002"):
                wr.write(ts, f)
                kept += 1
    assert kept >= 6
    sock2 = str(tmp_path / "w2.sock")
    second = str(tmp_path / "second.pcap")
    # The replay waits 2 s after ready, time enough for the wirestack host to attach.
    w2 = Proc("wire", "--medium", "hub", "--pcap", second, "--replay-delay", "2", "--port", f"unix:{sock2}",
              "--port", f"pcap:{linux}")
    cleanup[0].append(w2)
    w2.wait_line(lambda x: x == "ready")
    s2 = Proc("serve", "--wire", f"unix:{sock2}", "--ip", "198.18.0.2/24", "--mac", "02:00:00:00:00:02")
    cleanup[0].append(s2)
    s2.wait_line(lambda x: x == "ready")
    w2.wait_line(lambda x: x.startswith("replayed"), timeout=30)
    time.sleep(0.3)
    s2.stop()
    w2.stop()
    from wirestack.trace.pcap import PcapReader as R
    with R(second) as rd:
        frames = [f for _, f in rd]
    replies = [f for f in frames if f[6:12] == bytes.fromhex("020000000002") and f[12:14] == b"\x08\x00"
               and f[23] == 1 and f[34] == 0]
    assert len(replies) >= 3


def test_packet_port_on_a_veth_end(cleanup, tmp_path, netns):
    """packet:IFNAME@NETNS: Linux on one end of a veth pair reaches a wirestack host through
    the wire, which reads and writes the other end with an AF_PACKET socket."""
    require_tools("ping")
    kernel, wire_ns = netns("pk"), netns("pw")
    subprocess.run(["ip", "link", "add", "wsv0", "netns", kernel.name, "type", "veth",
                    "peer", "name", "wsv1", "netns", wire_ns.name], check=True)
    kernel.ip("addr", "add", "198.18.0.1/24", "dev", "wsv0")
    kernel.ip("link", "set", "wsv0", "up")
    wire_ns.ip("link", "set", "wsv1", "up")
    sock = str(tmp_path / "w.sock")
    w = start_wire(cleanup, "--port", f"packet:wsv1@{wire_ns.name}", "--port", f"unix:{sock}")
    s = Proc("serve", "--wire", f"unix:{sock}", "--ip", "198.18.0.2/24")
    cleanup[0].append(s)
    s.wait_line(lambda x: x == "ready")
    r = kernel.run(["ping", "-c", "3", "-i", "0.1", "-W", "2", "198.18.0.2"], timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 received" in r.stdout
    c = w.counters()
    assert c["ports"]["p0"]["rx_frames"] >= 4 and c["ports"]["p0"]["tx_frames"] >= 4
