"""wirestack over a TAP device, measured against the Linux kernel (not a test: prints figures).

    sudo .venv/bin/python bench/tap_bench.py [--size-mb 50] [--rounds 1000] [--connects 200]
                                             [--repeat 1] [--iperf3] [--json]

It starts

    wirestack serve --netns ws-bench-<pid> --tap wsbench0 --ip 198.18.0.2/24
                    --peer-ip 198.18.0.1/24 --echo 7 --discard 9 --chargen 19 [--iperf3 5201]

(serve creates the namespace and removes it again on SIGTERM), then measures from Linux
sockets created inside that namespace (this process enters it with setns(2) just to create
each socket; nothing is added to the root namespace):

* Linux -> wirestack: SIZE MB written into discard; the clock stops when wirestack has
  received everything (its FIN after our FIN) -- MB/s.
* wirestack -> Linux: SIZE MB read from chargen -- MB/s.
* 64-byte request/response over echo, TCP_NODELAY, ROUNDS round trips -- p50/p99.
* connect(): CONNECTS fresh connections to discard, SYN to established -- p50/p99.
* optionally (--iperf3) `iperf3 -c 198.18.0.2 -t 3` both ways, as a cross-check.

MB = 10**6 bytes.  Only 198.18.0.0/15 (RFC 2544) addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from wirestack.phy import netns  # noqa: E402

WS_IP = "198.18.0.2"
TAP = "wsbench0"
TARGETS = {"linux_to_ws": 45.0, "ws_to_linux": 45.0, "rr_p50_us": 150.0, "connect_p50_us": 300.0}


def sock_in(ns: str, nodelay: bool = False) -> socket.socket:
    with netns.enter(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(30)
    return s


def linux_to_wirestack(ns: str, size: int) -> float:
    s = sock_in(ns)
    s.connect((WS_IP, 9))
    chunk = b"\xa5" * (256 * 1024)
    t0 = time.perf_counter()
    left = size
    while left > 0:
        n = s.send(chunk[:min(left, len(chunk))])
        left -= n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)   # b"": discard saw our FIN after every byte, and answered with its own
    dt = time.perf_counter() - t0
    s.close()
    return size / dt / 1e6


def wirestack_to_linux(ns: str, size: int) -> float:
    s = sock_in(ns)
    s.connect((WS_IP, 19))
    buf = bytearray(256 * 1024)
    got = 0
    t0 = time.perf_counter()
    while got < size:
        n = s.recv_into(buf)
        if not n:
            raise RuntimeError(f"chargen closed after {got} bytes")
        got += n
    dt = time.perf_counter() - t0
    s.close()
    return size / dt / 1e6


def request_response(ns: str, rounds: int) -> list[float]:
    s = sock_in(ns, nodelay=True)
    s.connect((WS_IP, 7))
    msg = b"x" * 64
    times = []
    for i in range(rounds + 50):
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        got = 0
        while got < 64:
            b = s.recv(64 - got)
            if not b:
                raise RuntimeError("echo closed")
            got += len(b)
        if i >= 50:   # the first 50 warm up caches and the congestion window
            times.append((time.perf_counter_ns() - t0) / 1e3)
    s.close()
    return times


def connects(ns: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        s = sock_in(ns)
        t0 = time.perf_counter_ns()
        s.connect((WS_IP, 9))
        times.append((time.perf_counter_ns() - t0) / 1e3)
        s.close()
    return times


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def iperf3(ns: str, reverse: bool) -> float | None:
    argv = ["ip", "netns", "exec", ns, "iperf3", "-c", WS_IP, "-p", "5201", "-t", "3", "-J"]
    if reverse:
        argv.append("-R")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    try:
        return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 8e6
    except (ValueError, KeyError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=50)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--connects", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times, report the median")
    ap.add_argument("--iperf3", action="store_true", help="also run iperf3 -c / -R for 3 s each")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tap_bench: needs root and /dev/net/tun (sudo .venv/bin/python bench/tap_bench.py)",
              file=sys.stderr)
        return 1
    if args.iperf3 and shutil.which("iperf3") is None:
        print("tap_bench: --iperf3 needs the iperf3 command", file=sys.stderr)
        return 1

    ns = f"ws-bench-{os.getpid()}"
    serve_argv = [sys.executable, "-m", "wirestack", "serve", "--netns", ns, "--tap", TAP,
                  "--ip", f"{WS_IP}/24", "--peer-ip", "198.18.0.1/24",
                  "--echo", "7", "--discard", "9", "--chargen", "19"]
    if args.iperf3:
        serve_argv += ["--iperf3", "5201"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(HERE, "..", "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(serve_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    size = int(args.size_mb * 1e6)
    runs = []
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            print(f"tap_bench: serve did not start: {line}{proc.stderr.read()}", file=sys.stderr)
            return 1
        time.sleep(0.3)
        for _ in range(args.repeat):
            rr = request_response(ns, args.rounds)
            cn = connects(ns, args.connects)
            r = {
                "linux_to_ws": linux_to_wirestack(ns, size),
                "ws_to_linux": wirestack_to_linux(ns, size),
                "rr_p50_us": pct(rr, 50), "rr_p99_us": pct(rr, 99),
                "connect_p50_us": pct(cn, 50), "connect_p99_us": pct(cn, 99),
            }
            if args.iperf3:
                r["iperf3_up"] = iperf3(ns, False)
                r["iperf3_down"] = iperf3(ns, True)
            runs.append(r)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if netns.exists(ns):
            netns.delete(ns)

    res = {k: statistics.median(r[k] for r in runs if r.get(k) is not None)
           for k in runs[0] if any(r.get(k) is not None for r in runs)}
    if args.json:
        print(json.dumps({"runs": runs, "median": res}, indent=1))
        return 0
    rows = [
        ("Linux -> wirestack (discard)", f"{res['linux_to_ws']:.1f} MB/s", ">= 45 MB/s",
         res["linux_to_ws"] >= TARGETS["linux_to_ws"]),
        ("wirestack -> Linux (chargen)", f"{res['ws_to_linux']:.1f} MB/s", ">= 45 MB/s",
         res["ws_to_linux"] >= TARGETS["ws_to_linux"]),
        ("64 B request/response p50", f"{res['rr_p50_us']:.0f} us", "<= 150 us",
         res["rr_p50_us"] <= TARGETS["rr_p50_us"]),
        ("64 B request/response p99", f"{res['rr_p99_us']:.0f} us", "", None),
        ("connect p50", f"{res['connect_p50_us']:.0f} us", "<= 300 us",
         res["connect_p50_us"] <= TARGETS["connect_p50_us"]),
        ("connect p99", f"{res['connect_p99_us']:.0f} us", "", None),
    ]
    if "iperf3_up" in res:
        rows.append(("iperf3 -c (Linux -> wirestack)", f"{res['iperf3_up']:.1f} MB/s", "", None))
    if "iperf3_down" in res:
        rows.append(("iperf3 -c -R (wirestack -> Linux)", f"{res['iperf3_down']:.1f} MB/s", "", None))
    print(f"wirestack TAP bench: {args.size_mb:g} MB transfers, {args.rounds} round trips, "
          f"{args.connects} connects, median of {len(runs)} run(s)")
    print(f"{'measure':<36}{'result':>14}  {'target':<12}")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"{name:<36}{value:>14}  {target:<12}{mark}")
    print()
    print("serve:   " + " ".join([".venv/bin/python"] + serve_argv[1:]))
    print(f"clients: Linux sockets in namespace {ns} (setns), to {WS_IP} ports 9 (discard), "
          "19 (chargen), 7 (echo, TCP_NODELAY)")
    if args.iperf3:
        print(f"         ip netns exec {ns} iperf3 -c {WS_IP} -p 5201 -t 3 [-R] -J")
    return 0


if __name__ == "__main__":
    sys.exit(main())
