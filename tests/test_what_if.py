"""What-if re-runs: the same seed again with one change made through the wire's scripted
faults (``Fault(frame=N)``), and the two runs compared."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import wirestack
from wirestack.runtime.sim import Network
from wirestack.sim import Fault
from wirestack.trace.pcap import PcapReader

from sim_transfer import send_to_sink


def cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wirestack.__file__)))
    return subprocess.run([sys.executable, "-m", "wirestack"] + args, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def transfer(path, fault=None):
    net = Network(seed=9)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    link = net.link(a, b, delay_ms=5, jitter_ms=1, loss=0.02, rate_mbps=10)
    if fault is not None:
        link.add_fault(fault)
    net.capture(str(path), link)

    send_to_sink(net, a, b, 60_000)
    decisions = list(net.decisions)
    net.close()
    with PcapReader(str(path)) as r:
        return list(r), decisions


def test_fault_on_one_frame_number_changes_that_frame_and_nothing_before(tmp_path):
    base, _ = transfer(tmp_path / "a.pcap")
    killed, decisions = transfer(tmp_path / "b.pcap", Fault("drop", frame=20, name="kill #20"))
    assert [e["frame"] for e in decisions if e["event"] == "fault"] == [20]
    # The wire numbers frames in the order they are sent: the 20 first frames are the same
    # (frame 20 is still transmitted, then dropped), the run diverges after it.
    assert base[:20] == killed[:20]
    assert base != killed


def test_demo_kill_the_syn_costs_an_rto(tmp_path):
    common = ["demo", "--size", "50000", "--loss", "0", "--reorder", "0", "--duplicate", "0"]
    out = cli(common + ["--ladder", "-"], tmp_path).stdout
    syn = int(re.search(r"#(\d+) \d+ → 5001 \[SYN\]", out).group(1))
    proc = cli(common + ["--kill", str(syn), "--html", "wi.html"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert f"== what if frame #{syn} is lost?" in text
    m = re.search(r"RTOs\s+(\d+)\s+(\d+)", text)
    assert int(m.group(2)) == int(m.group(1)) + 1
    assert re.search(rf"first frame that differs: #{syn}\n.*delivered\n.*lost: scripted fault kill #{syn}", text)
    html = (tmp_path / "wi.html").read_text()
    assert "as it ran" in html and f"what if frame #{syn} is lost" in html


def test_demo_what_if_switch_and_bad_arguments(tmp_path):
    proc = cli(["demo", "--size", "100000", "--loss", "0.05", "--what-if", "sack=off"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "== what if sack=off?" in proc.stdout and "first frame that differs: #" in proc.stdout
    bad = cli(["demo", "--delay-frame", "12"], tmp_path)
    assert bad.returncode == 2 and "N:MS" in bad.stderr
    bad = cli(["demo", "--what-if", "sack"], tmp_path)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
