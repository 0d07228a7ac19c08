"""Ladder diagrams: a lost frame stops on the wire with its reason, a damaged one is crossed
out at the layer that dropped it, and TCP's reactions (state, RTO, cwnd) are on the lanes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import wirestack
from wirestack.runtime.sim import Network
from wirestack.sim import Fault
from wirestack.trace.ladder import svg_ladder, text_ladder
from wirestack.trace.record import RunRecorder

from sim_transfer import send_to_sink


def run(check_fcs=True, **link):
    net = Network(seed=2)
    a = net.host("a", "198.18.0.1/24", check_fcs=check_fcs)
    b = net.host("b", "198.18.0.2/24", check_fcs=check_fcs)
    wire = net.link(a, b, delay_ms=5, rate_mbps=10, **link)
    wire.add_fault(Fault("drop", match=lambda f: f.tcp is not None and f.tcp.syn and not f.tcp.ack_flag,
                         nth=1, name="first SYN"))
    rec = RunRecorder(net, title="test")

    send_to_sink(net, a, b, 40_000)
    data = rec.data()
    net.close()
    return data


def test_text_ladder_shows_the_lost_syn_its_reason_and_the_rto():
    data = run()
    text = text_ladder(data)
    syn = next(f for f in data["frames"] if f["label"].endswith("[SYN] Seq=0 Win=65535 Len=0"))
    assert syn["fate"] == "lost"
    line = next(x for x in text.splitlines() if f"#{syn['id']} " in x)
    assert "X" in line and "LOST" in line and "scripted fault first SYN" in line
    # The arrow stops half-way: the X is in the middle of the lanes, not at b's lane.
    lanes = [m.start() for m in re.finditer(r"\|", text.splitlines()[-1])]
    assert lanes[0] < line.index("X") < lanes[-1] - 10
    assert re.search(r"\* a: RTO fired: retransmit seq 0, timer now 2000 ms \(backoff ×2\)", text)
    assert "* a: TCP SYN_SENT → ESTABLISHED" in text and "* b: TCP LISTEN → SYN_RECEIVED" in text
    # Labels as in Wireshark's flow graph, with relative numbers.
    assert re.search(r"\[ACK\] Seq=1449 Ack=1 Win=\d+ Len=1448", text)


def test_damaged_frames_are_crossed_out_where_they_were_dropped():
    data = run(corrupt=0.05)                       # the NIC checks the FCS
    nic = [f for f in data["frames"] if f["fate"] == "dropped"]
    assert nic and all(f["where"] == "NIC" and "FCS bad" in f["reason"] for f in nic)
    data = run(corrupt=0.05, check_fcs=False)      # the checksums have to catch it
    upper = [f for f in data["frames"] if f["fate"] == "dropped"]
    assert upper and {f["where"] for f in upper} <= {"IP", "TCP", "UDP"}
    text = text_ladder(data)
    assert re.search(r"X\|\s+dropped by b's (TCP|IP): checksum wrong", text) or \
        re.search(r"\|X.*dropped by a's (TCP|IP): checksum wrong", text)


def test_svg_ladder_is_valid_svg_with_one_group_per_frame():
    data = run()
    svg = svg_ladder(data, interactive=True)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g for g in root.iter(ns + "g") if g.get("class") == "frame"]
    assert len(groups) == len(data["frames"])
    assert "scripted fault first SYN" in svg


def test_cli_demo_ladder_to_terminal_and_svg(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wirestack.__file__)))
    out = subprocess.run([sys.executable, "-m", "wirestack", "demo", "--size", "20000", "--loss", "0.1",
                          "--ladder", "-", "--ladder", "run.svg"][:-2], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120, check=True).stdout
    assert re.search(r"X.*LOST #\d+ .*lost: loss p=0.10", out)
    subprocess.run([sys.executable, "-m", "wirestack", "demo", "--size", "20000", "--ladder", "run.svg"],
                   capture_output=True, cwd=tmp_path, env=env, timeout=120, check=True)
    ET.parse(tmp_path / "run.svg")
