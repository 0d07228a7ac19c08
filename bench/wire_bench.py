"""Linux TCP and wirestack TCP across the same `wirestack wire` (not a test: prints a table).

    sudo .venv/bin/python bench/wire_bench.py [--size-mb 20] [--loss 0,0.01,0.05] [--cc cubic,reno]
                                              [--cost-only | --no-cost] [--json] [--plot FILE.png]

Headline: SIZE MB sent across a link of 10 Mbit/s, 20 ms each way (40 ms RTT), a transmit
queue of 64 frames (about 1.5 x the bandwidth-delay product of 33 frames) and 0/1/5%
independent loss in both directions, by

* Linux: a Python socket in namespace A (congestion control set with
  `sysctl net.ipv4.tcp_congestion_control` in that namespace -- the kernel's default here
  is BBR -- and TCP_CONGESTION on the socket), the wire's `tap:` ports on both ends;
* wirestack: a host in this process attached to the wire's `unix:` port with
  `congestion_control="cubic"` or `"newreno"`;

each to the same Linux receiver in namespace B, which times from accept() to EOF. Goodput =
payload bits / that time / 10 Mbit/s; the ceiling is 1448/1518 = 95.4% (headers and FCS
share the link). Retransmitted segments: the sender's own counter (/proc/net/snmp
RetransSegs in namespace A; wirestack's tcp.retrans_segs).

The wire's cost: Linux <-> Linux iperf3 MB/s and ping RTT through an unimpaired wire (two
`tap:` ports, no rate limit) next to a direct veth pair between two namespaces.

Namespaces are ws-wb<tag>-<pid>, created by the wire or here and deleted at the end;
addresses 198.18.0.0/15 only. MB = 10**6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
sys.path.insert(0, SRC)

from wirestack.phy import netns  # noqa: E402

PID = os.getpid()
NS_A, NS_B = f"ws-wba-{PID}", f"ws-wbb-{PID}"
IP_A, IP_B = "198.18.0.1", "198.18.0.2"
RATE_MBPS = 10
DELAY_MS = 20
QUEUE = 64
PORT = 5001
ENV = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))

RECEIVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); t0 = time.monotonic(); n = 0
while True:
    d = c.recv(1 << 20)
    if not d: break
    n += len(d)
print(n, time.monotonic() - t0, flush=True)
"""

SENDER = r"""
import socket, sys
size, cc = int(sys.argv[3]), sys.argv[4].encode()
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc)
s.connect((sys.argv[1], int(sys.argv[2])))
chunk = b"\xa5" * 65536
left = size
while left > 0:
    n = s.send(chunk[:left])
    left -= n
s.close()
"""


class Wire:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "wirestack", "wire", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for line in self.proc.stdout:
            if line.strip() == "ready":
                return
        raise RuntimeError("wire did not start: " + self.proc.stderr.read())

    def counters(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        for line in self.proc.stdout:
            if line.startswith("counters "):
                return json.loads(line[len("counters "):])
        return {}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def impaired(loss: float, *ports: str, pcap: str | None = None) -> Wire:
    args = ["--rate", str(RATE_MBPS), "--delay", str(DELAY_MS), "--queue", str(QUEUE), "--seed", "1"]
    if loss:
        args += ["--loss", str(loss)]
    if pcap:
        args += ["--pcap", pcap]
    for p in ports:
        args += ["--port", p]
    return Wire(*args)


def retrans(ns: str) -> int:
    out = netns.run_in(ns, ["cat", "/proc/net/snmp"]).stdout.splitlines()
    heads = [line.split() for line in out if line.startswith("Tcp:")]
    return int(heads[1][heads[0].index("RetransSegs")])


def start_receiver(ns: str) -> subprocess.Popen:
    r = netns.popen_in(ns, [sys.executable, "-c", RECEIVER, IP_B, str(PORT)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert r.stdout.readline().strip() == "listening"
    return r


def finish_receiver(r: subprocess.Popen, timeout: float) -> tuple[int, float]:
    out, err = r.communicate(timeout=timeout)
    n, secs = out.split()[-2:]
    return int(n), float(secs)


def linux_run(size: int, loss: float, cc: str, pcap: str | None = None) -> dict:
    w = impaired(loss, f"tap:{NS_A}:{IP_A}/24", f"tap:{NS_B}:{IP_B}/24", pcap=pcap)
    try:
        for ns in (NS_A, NS_B):
            netns.run_in(ns, ["sysctl", "-q", "-w", f"net.ipv4.tcp_congestion_control={cc}"])
        r = start_receiver(NS_B)
        before = retrans(NS_A)
        s = netns.run_in(NS_A, [sys.executable, "-c", SENDER, IP_B, str(PORT), str(size), cc], timeout=900)
        assert s.returncode == 0, s.stderr
        n, secs = finish_receiver(r, 900)
        return {"bytes": n, "seconds": secs, "retrans": retrans(NS_A) - before,
                "lost_frames": w.counters()["decisions"].get("dropped_loss", 0)}
    finally:
        w.stop()


def wirestack_run(size: int, loss: float, cc: str, sock: str, pcap: str | None = None) -> dict:
    from wirestack.runtime.realtime import attach_to_wire
    w = impaired(loss, f"unix:{sock}", f"tap:{NS_B}:{IP_B}/24", pcap=pcap)
    try:
        r = start_receiver(NS_B)

        async def send() -> int:
            rt = attach_to_wire(f"unix:{sock}", f"{IP_A}/24", name="ws")
            try:
                reader, writer = await rt.open_connection(IP_B, PORT, congestion_control=cc)
                chunk = b"\xa5" * 65536
                left = size
                while left > 0:
                    writer.write(chunk[:left])
                    left -= min(left, len(chunk))
                    await writer.drain()
                writer.close()
                await writer.wait_closed()
                # The data still unacknowledged lives in this process: keep the loop (and so
                # the retransmissions) running until the receiver has seen the FIN.
                while r.poll() is None:
                    await asyncio.sleep(0.05)
                return rt.host.counters["tcp.retrans_segs"]
            finally:
                rt.stop()
                rt.device.close()

        rx = asyncio.run(send())
        n, secs = finish_receiver(r, 900)
        return {"bytes": n, "seconds": secs, "retrans": rx,
                "lost_frames": w.counters()["decisions"].get("dropped_loss", 0)}
    finally:
        w.stop()


# -- time-sequence graphs from the wire's capture --------------------------------------------

def time_sequence(pcap: str) -> tuple[list, list, list, list]:
    """(t, relative seq) of the sender's data segments as the wire saw them, split into
    first transmissions and retransmissions (a segment ending at or below the highest
    sequence number already sent)."""
    from wirestack.trace.pcap import PcapReader
    from wirestack.wire import MalformedPacket, parse_frame
    t0 = isn = None
    top = 0
    first_t, first_s, re_t, re_s = [], [], [], []
    with PcapReader(pcap) as rd:
        for ts, frame in rd:
            try:
                f = parse_frame(frame, verify_checksums=False)
            except MalformedPacket:
                continue
            if f.tcp is None or f.ip is None or f.tcp.dport != PORT:
                continue
            if isn is None:
                if not f.tcp.syn:
                    continue
                isn, t0 = f.tcp.seq + 1, ts
                continue
            n = len(f.payload)
            if not n:
                continue
            end = (f.tcp.seq - isn) % (1 << 32) + n
            t = (ts - t0) / 1e9
            if end <= top:
                re_t.append(t)
                re_s.append(end / 1e6)
            else:
                top = end
                first_t.append(t)
                first_s.append(end / 1e6)
    return first_t, first_s, re_t, re_s


def plot(runs: list[tuple[dict, str]], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    losses = sorted({r["loss"] for r, _ in runs})
    ccs = sorted({r["cc"] for r, _ in runs if r["who"] == "linux"})
    fig, axes = plt.subplots(len(losses), 2 * len(ccs), figsize=(5 * 2 * len(ccs), 3.2 * len(losses)),
                             squeeze=False, sharey=True)
    for r, pcap in runs:
        row = losses.index(r["loss"])
        cc = r["cc"] if r["who"] == "linux" else ("reno" if r["cc"] == "newreno" else r["cc"])
        col = 2 * ccs.index(cc) + (0 if r["who"] == "linux" else 1)
        ax = axes[row][col]
        ft, fs, rt, rs = time_sequence(pcap)
        ax.plot(ft, fs, ",", color="tab:blue")
        ax.plot(rt, rs, ".", color="tab:red", markersize=2)
        ax.set_title(f"{r['who']} {r['cc']}, loss {r['loss']:.0%}: {r['goodput']:.0%} of link", fontsize=9)
        ax.set_xlabel("s")
        if col == 0:
            ax.set_ylabel("sequence (MB)")
    fig.suptitle(f"time-sequence at the wire: {RATE_MBPS} Mbit/s, {2 * DELAY_MS} ms RTT (red: retransmissions)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# -- the wire's own cost ---------------------------------------------------------------------

def iperf_mbs(client_ns: str) -> float:
    srv = netns.popen_in(NS_B, ["iperf3", "-s", "-1", "-B", IP_B], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = netns.run_in(client_ns, ["iperf3", "-c", IP_B, "-t", "3", "-C", "cubic", "-J"], timeout=60)
        res = json.loads(r.stdout)
        return res["end"]["sum_received"]["bits_per_second"] / 8e6
    finally:
        srv.wait(timeout=10)


def ping_ms(ns: str) -> float:
    netns.run_in(ns, ["ping", "-c", "2", "-i", "0.2", IP_B])   # ARP first
    r = netns.run_in(ns, ["ping", "-c", "50", "-i", "0.02", "-q", IP_B], timeout=60)
    m = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    return float(m.group(1))


def cost() -> dict:
    out = {}
    w = Wire("--port", f"tap:{NS_A}:{IP_A}/24", "--port", f"tap:{NS_B}:{IP_B}/24")
    try:
        out["wire_ping_ms"] = ping_ms(NS_A)
        out["wire_mbs"] = iperf_mbs(NS_A)
    finally:
        w.stop()
    with netns.Namespace(NS_A), netns.Namespace(NS_B):
        subprocess.run(["ip", "link", "add", "wsb0", "netns", NS_A, "type", "veth", "peer", "name", "wsb1",
                        "netns", NS_B], check=True)
        for ns, dev, ip in ((NS_A, "wsb0", IP_A), (NS_B, "wsb1", IP_B)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        out["veth_ping_ms"] = ping_ms(NS_A)
        out["veth_mbs"] = iperf_mbs(NS_A)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=20)
    ap.add_argument("--loss", default="0,0.01,0.05")
    ap.add_argument("--cc", default="cubic,reno", help="Linux names; wirestack uses newreno for reno")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--cost-only", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", metavar="FILE.png", help="time-sequence graphs of every run, side by side")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces, TAP devices)", file=sys.stderr)
        return 1
    size = int(args.size_mb * 1e6)
    rows = []
    sock = f"/tmp/ws-wire-bench-{PID}.sock"
    captures: list[tuple[dict, str]] = []
    try:
        if not args.cost_only:
            for cc in args.cc.split(","):
                for loss in (float(x) for x in args.loss.split(",")):
                    for who in ("linux", "wirestack"):
                        pcap = f"/tmp/ws-wire-bench-{PID}-{len(rows)}.pcap" if args.plot else None
                        if who == "linux":
                            res = linux_run(size, loss, cc, pcap)
                        else:
                            res = wirestack_run(size, loss, "newreno" if cc == "reno" else cc, sock, pcap)
                        res.update(who=who, cc=cc if who == "linux" else ("newreno" if cc == "reno" else cc),
                                   loss=loss, goodput=res["bytes"] * 8 / res["seconds"] / (RATE_MBPS * 1e6))
                        rows.append(res)
                        if pcap:
                            captures.append((res, pcap))
                        if not args.json:
                            print(f"{who:9} {res['cc']:8} loss {loss:4.0%}  {res['bytes'] / 1e6:6.1f} MB in "
                                  f"{res['seconds']:7.2f} s  goodput {res['goodput']:6.1%} of {RATE_MBPS} Mbit/s  "
                                  f"retransmitted segs {res['retrans']:5}  frames lost by the wire "
                                  f"{res['lost_frames']}", flush=True)
        if args.plot and captures:
            plot(captures, args.plot)
        c = {} if args.no_cost else cost()
    finally:
        for _, pcap in captures:
            if os.path.exists(pcap):
                os.remove(pcap)
        for ns in (NS_A, NS_B):
            if netns.exists(ns):
                netns.delete(ns)
    if args.json:
        print(json.dumps({"rows": rows, "cost": c}, indent=1))
    elif c:
        print(f"wire cost: Linux<->Linux iperf3 {c['wire_mbs']:.1f} MB/s through the wire vs "
              f"{c['veth_mbs']:.1f} MB/s on a veth pair; ping RTT {c['wire_ping_ms']:.3f} ms vs "
              f"{c['veth_ping_ms']:.3f} ms (added {c['wire_ping_ms'] - c['veth_ping_ms']:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
