"""`wirestack wire` as a user runs it: another OS process, stream ports, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from wirestack.phy.stream import FrameDecoder, encode

SRC = os.path.join(os.path.dirname(__file__), "..", "src")
BCAST = b"\xff" * 6


def wire(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    return subprocess.Popen([sys.executable, "-m", "wirestack", "wire", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def readline(p: subprocess.Popen, timeout: float = 10.0) -> str:
    import select
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, "wirestack wire printed nothing"
    return p.stdout.readline().strip()


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(5)
    return s


def recv_frames(s: socket.socket, n: int) -> list[bytes]:
    dec = FrameDecoder()
    out: list[bytes] = []
    while len(out) < n:
        data = s.recv(65536)
        if not data:
            break
        out += dec.feed(data)
    return out


def test_wire_cli_ready_attach_counters_and_cleanup(tmp_path):
    f = BCAST + bytes([2, 0, 0, 0, 0, 1]) + b"\x88\xb5" + bytes(46)
    sock = str(tmp_path / "w.sock")
    sock2 = str(tmp_path / "w2.sock")
    decisions = str(tmp_path / "d.jsonl")
    pcap = str(tmp_path / "w.pcap")
    topo = tmp_path / "t.toml"
    topo.write_text(f"""
seed = 3
[[medium]]
name = "lan"
kind = "switch"
params = {{ delay_ms = 1 }}
[[medium.port]]
spec = "unix:{sock}"
[[medium.port]]
name = "lossy"
spec = "unix:{sock2}"
params = {{ loss = 1.0 }}
""")
    p = wire("--topology", str(topo), "--decisions", decisions, "--pcap", pcap)
    try:
        assert readline(p) == "ready"
        a, b = connect(sock), connect(sock2)
        assert readline(p).startswith("attached p0#1 unix:")
        assert readline(p).startswith("attached lossy#1 unix:")
        c = connect(sock)
        assert readline(p).startswith("attached p0#2 unix:")
        a.sendall(encode(f))
        assert recv_frames(c, 1)[0][:60] == f          # through the switch to the other client
        b.settimeout(0.3)
        try:
            assert b.recv(100) == b""                  # loss = 1.0 on the lossy port's cable
        except socket.timeout:
            pass
        p.send_signal(signal.SIGUSR1)
        line = readline(p)
        assert line.startswith("counters ")
        counters = json.loads(line[len("counters "):])
        assert counters["ports"]["p0"]["attached"] == 2 and counters["ports"]["p0"]["rx_frames"] == 1
        assert counters["decisions"]["dropped_loss"] == 1
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    assert not os.path.exists(sock) and not os.path.exists(sock2)
    events = [json.loads(x) for x in open(decisions)]
    assert [e["event"] for e in events if e["event"] in ("arrived", "dropped_loss")] == ["arrived", "dropped_loss"]
    from wirestack.trace.pcap import PcapReader
    with PcapReader(pcap) as r:
        assert [fr for _, fr in r] == [f + bytes(60 - len(f))]   # the switch saw it once, padded


def test_wire_cli_rejects_bad_setups(tmp_path):
    p = wire("--medium", "hub", "--loss", "0.1", "--port", f"unix:{tmp_path}/x.sock")
    _, err = p.communicate(timeout=10)
    assert p.returncode == 2 and "hub has no impairments" in err
    p = wire("--port", "bogus:1")               # a bad argument: refused while parsing
    _, err = p.communicate(timeout=10)
    assert p.returncode == 2 and "unknown port kind" in err
    busy = tmp_path / "busy"
    busy.write_text("not a socket")
    p = wire("--port", f"unix:{busy}")
    _, err = p.communicate(timeout=10)
    assert p.returncode == 1 and "not a socket" in err and busy.exists()


def test_replaying_a_capture_twice_meets_the_same_fates(tmp_path):
    """Same seed, same frames in the same order (a pcap port replays them): the decision
    logs agree entry for entry, apart from the real-time stamps."""
    from wirestack.trace.pcap import PcapWriter
    cap = str(tmp_path / "in.pcap")
    with PcapWriter(cap, nanosecond=True) as w:
        for i in range(300):
            w.write(i * 200_000, BCAST + bytes([2, 0, 0, 0, 0, 1]) + b"\x88\xb5" + i.to_bytes(4, "big") + bytes(42))
    runs = []
    for k in range(2):
        sock = str(tmp_path / f"w{k}.sock")
        dec = str(tmp_path / f"d{k}.jsonl")
        p = wire("--loss", "0.3", "--duplicate", "0.1", "--corrupt", "0.05", "--seed", "4", "--decisions", dec,
                 "--replay-delay", "0.5", "--port", f"pcap:{cap}", "--port", f"unix:{sock}")
        try:
            assert readline(p).startswith("attached p0 pcap:")
            assert readline(p) == "ready"
            c = connect(sock)                  # a sink on end b (the pcap port took end a)
            deadline = time.monotonic() + 20
            while not readline(p, 20).startswith("replayed"):
                assert time.monotonic() < deadline
            time.sleep(0.2)
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=10)
            c.close()
        finally:
            if p.poll() is None:
                p.kill()
        runs.append([{k: v for k, v in json.loads(x).items() if k != "t"} for x in open(dec)])
    a, b = runs
    kinds = {e["event"] for e in a}
    assert sum(e["event"] == "arrived" for e in a) == 300
    assert {"dropped_loss", "duplicated", "corrupted"} <= kinds
    assert a == b
