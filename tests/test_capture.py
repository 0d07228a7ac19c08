"""Captures that tell the truth: pcapng with the wire's decision per packet, on the medium
(every frame as transmitted, with its fate) and at a host's NIC (what it sent and fully
received: never a frame the wire lost). tshark is the independent reader."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

import wirestack
from wirestack.apps.ping import ping
from wirestack.labs.demo import DemoOptions, run_demo
from wirestack.runtime.sim import Network
from wirestack.trace.pcapng import PcapngReader, PcapngWriter

from sim_transfer import send_to_sink

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed: apt-get install tshark")


def tshark_fields(path, *fields, filt=None) -> list[list[str]]:
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields"] + [x for f in fields for x in ("-e", f)]
    if filt:
        cmd += ["-Y", filt]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def cli(args, cwd, **kw):
    """Run `python -m wirestack ARGS` in ``cwd`` with this checkout's sources."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wirestack.__file__)))
    return subprocess.run([sys.executable, "-m", "wirestack"] + args, capture_output=True, cwd=cwd,
                          env=env, timeout=120, **kw)


def demo(tmp_path, name, **kw):
    opt = DemoOptions(seed=3, size=60_000, loss=0.1, corrupt=0.03, pcap=str(tmp_path / name), pings=5, **kw)
    return run_demo(opt)


def test_pcapng_round_trip_and_byte_layout(tmp_path):
    path = tmp_path / "x.pcapng"
    with PcapngWriter(path, interfaces=["a.eth0", "b.eth0"]) as w:
        w.write(1_500_000_123, b"\x01" * 60, comment="#7 lost: loss p=0.10", interface=1, direction="tx")
        w.write(2_000_000_000, b"\x02" * 61)
    data = path.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a" and len(data) % 4 == 0
    with PcapngReader(path) as r:
        pkts = list(r)
        assert r.interfaces == ["a.eth0", "b.eth0"]
    assert [(p.ts, p.interface, p.comment, p.direction) for p in pkts] == [
        (1_500_000_123, 1, "#7 lost: loss p=0.10", "tx"), (2_000_000_000, 0, None, None)]
    assert pkts[1].data == b"\x02" * 61


@needs_tshark
def test_wire_capture_comments_say_why_frames_were_lost_or_corrupted(tmp_path):
    demo(tmp_path, "demo.pcapng")
    rows = tshark_fields(tmp_path / "demo.pcapng", "frame.number", "frame.comment")
    comments = [r[1] for r in rows if len(r) > 1]
    lost = [c for c in comments if "lost: loss p=0.10" in c]
    corrupted = [c for c in comments if re.search(r"bits? [\d, and]+ flipped, FCS bad", c)]
    assert len(lost) >= 5 and corrupted
    # Every packet is numbered by the decision log, so `--kill N` and why(N) find it.
    assert all(re.match(r"#\d+", c) for c in comments) and len(comments) == len(rows)


@needs_tshark
def test_receiver_nic_capture_holds_no_lost_frame(tmp_path):
    # Capture at b's NIC through the API: what b sent and what b's adapter accepted.
    net_frames = _nic_capture(tmp_path / "b2.pcapng")
    with PcapngReader(tmp_path / "b2.pcapng") as r:
        pkts = list(r)
    rx = [p for p in pkts if p.direction == "rx"]
    assert rx and all("lost" not in (p.comment or "") and "FCS bad" not in (p.comment or "") for p in rx)
    # By number: no frame the wire lost on its way to b, nor one b's NIC refused, was "received".
    rx_ids = {int(p.comment.split()[0][1:]) for p in rx}
    assert net_frames["lost_to_b"] and not rx_ids & net_frames["lost_to_b"]
    # ... and every frame delivered to b is there: rx count = what the NIC accepted.
    assert len(rx) == net_frames["b_rx"]
    assert len(pkts) - len(rx) == net_frames["b_tx"]
    # tshark agrees on the direction flag and the count.
    assert len(tshark_fields(tmp_path / "b2.pcapng", "frame.number")) == len(pkts)


def _nic_capture(path):
    net = Network(seed=3)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=5, loss=0.2, corrupt=0.05, rate_mbps=10)
    net.capture(str(path), b)

    send_to_sink(net, a, b, 50_000)
    counts = {"b_rx": b.nics[0].rx_frames, "b_tx": b.nics[0].tx_frames,
              "lost_to_b": {e["frame"] for e in net.decisions
                            if (e["event"] == "dropped_loss" and e["src"] == "a.eth0") or e["event"] == "fcs_drop"
                            and e["by"] == "b.eth0"}}
    net.close()
    return counts


@needs_tshark
def test_ping_rtt_in_sender_nic_capture_agrees_with_ping(tmp_path):
    net = Network(seed=5)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=7, jitter_ms=3)
    net.capture(str(tmp_path / "a.pcapng"), a)
    lines = []
    net.run(ping(a, "198.18.0.2", count=5, interval=0.2, on_line=lines.append))
    net.close()
    ping_ms = [float(m.group(1)) for m in (re.search(r"time=([\d.]+) ms", x) for x in lines) if m]
    rows = tshark_fields(tmp_path / "a.pcapng", "icmp.resptime", filt="icmp.type == 0")
    ws_ms = [float(r[0]) for r in rows]
    assert len(ping_ms) == len(ws_ms) == 5
    # The first request waited for ARP inside a before it reached the NIC: ping counts that
    # wait, the capture (like tcpdump on a real host) does not.
    assert ping_ms[0] > ws_ms[0] + 10
    for p, w in zip(ping_ms[1:], ws_ms[1:]):
        assert abs(p - w) <= 0.05   # ping prints 0.1 ms resolution: same instants, rounded


def test_pcapng_is_byte_identical_for_a_seed_and_changes_with_it(tmp_path):
    digests = []
    for i, seed in enumerate((4, 4, 5)):
        path = tmp_path / f"r{i}.pcapng"
        run_demo(DemoOptions(seed=seed, size=20_000, loss=0.05, pcap=str(path), pings=2))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]


@needs_tshark
def test_cli_streams_pcapng_to_stdout_and_text_to_stderr(tmp_path):
    proc = cli(["demo", "--size", "20000", "--loss", "0.1", "--pcap", "-"], tmp_path, check=True)
    assert proc.stdout[:4] == b"\x0a\x0d\x0d\x0a"
    assert b"TCP transfer" in proc.stderr
    out = subprocess.run([TSHARK, "-r", "-", "-T", "fields", "-e", "frame.comment"], input=proc.stdout,
                         capture_output=True, check=True).stdout.decode()
    assert "lost: loss p=0.10" in out


def test_cli_pcap_at_host_and_unknown_host(tmp_path):
    cmd = ["demo", "--size", "20000", "--loss", "0.1", "--pcap", "b.pcapng", "--pcap-at", "b"]
    cli(cmd, tmp_path, check=True)
    with PcapngReader(tmp_path / "b.pcapng") as r:
        pkts = list(r)
        assert r.interfaces == ["b.eth0"]
    assert all("lost" not in (p.comment or "") for p in pkts if p.direction == "rx")
    bad = cli(cmd[:-1] + ["zz"], tmp_path, text=True)
    assert bad.returncode == 2 and "no host 'zz'" in bad.stderr


def test_hub_capture_tells_collisions_and_backoff(tmp_path):
    net = Network(seed=2)
    hosts = [net.host(n, f"198.18.0.{i + 1}/24") for i, n in enumerate("abcd")]
    net.hub(*hosts, csma_cd=True)
    net.capture(str(tmp_path / "hub.pcapng"))      # the first medium: the hub
    net.run_for(0.5)                                # four gratuitous ARPs at t=0 collide
    net.close()
    with PcapngReader(tmp_path / "hub.pcapng") as r:
        comments = [p.comment for p in r]
    assert len(comments) == 4
    assert any(re.search(r"\d+ collisions \(attempts 1-\d+\), backoff [\d, ]+ slot times", c) or
               "collision, attempt 1" in c for c in comments)
