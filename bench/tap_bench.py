"""wirestack over a TAP device, measured as a ratio to a reference in the same run (not a test).

    sudo .venv/bin/python bench/tap_bench.py [--size-mb 50] [--rounds 1000] [--connects 2000]
                                             [--repeat 1] [--offload [csum]] [--iperf3] [--json]

Absolute figures on a shared machine drift by 2x from day to day, so every run measures a
REFERENCE next to wirestack and prints wirestack's figures as ratios to it:

* reference: Linux TCP between two namespaces ws-ref{a,b}-<pid> whose only link is a pair of
  TAP devices joined by bench/tap_forwarder.py, a pure-Python frame forwarder (epoll, read,
  write, no protocol work).  Linux's own discard/chargen/echo (bench/linux_services.py) run
  in the far namespace, 198.18.1.2; the client is in the near one.
* wirestack: `wirestack serve --netns ws-bench-<pid> --tap wsbench0 --ip 198.18.0.2/24
  --peer-ip 198.18.0.1/24 --echo 7 --discard 9 --chargen 19 [--iperf3 5201]`; the client
  is Linux in that namespace.

Both paths cross exactly one Python process per frame on the same kind of TAP device, so
the ratio says how much wirestack's TCP/IP costs on top of the least a user-space endpoint
must do.  Measures (clients are Linux sockets created with setns(2); nothing is added to the
root namespace, and every namespace is deleted at the end):

* Linux -> server: SIZE MB written into discard; the clock stops when the server has
  received everything (its FIN after our FIN) -- MB/s.
* server -> Linux: SIZE MB read from chargen -- MB/s.
* 64-byte request/response over echo, TCP_NODELAY, ROUNDS round trips -- p50/p99.
* connect(): CONNECTS fresh connections to discard, SYN to established -- p50/p99.  The
  client namespaces let connect() reuse a port whose TIME_WAIT is over a second old
  (net.ipv4.tcp_tw_reuse=1, see reuse_time_wait).
* optionally (--iperf3) `iperf3 -c 198.18.0.2 -t 3` both ways against wirestack only.

Each transfer runs on the reference and on wirestack back to back, in an order that flips
from one measure to the next, so that drift on a shared machine hits both within seconds;
the latency measures alternate the two sides in 10 slices each (drift and the scheduler's
placement of the processes, which move a single round trip by 2x, then hit both alike);
--repeat N does that N times and prints medians: of each side's figures, and of the ratio
of the two sides' figures in each run (a run's two figures were measured in the same phase
of the machine; the ratio of two medians would pair figures from different runs), each
run's own ratio beside it ("runs"), so that the spread between runs is in plain sight.
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
REF_IP = "198.18.1.2"           # Linux services behind the forwarder
REF_CLIENT_IP = "198.18.1.1"
# Ratio targets: (key, "higher"|"lower" is better, bound)
TARGETS = {"linux_to_ws": (">=", 0.9), "ws_to_linux": (">=", 0.9),
           "rr_p50_us": ("<=", 1.0), "connect_p50_us": ("<=", 1.5)}
# With offloads (wirestack only) the bulk transfers are to beat the plain forwarder 3x.
OFFLOAD_TARGETS = dict(TARGETS, linux_to_ws=(">=", 3.0), ws_to_linux=(">=", 3.0))


def sock_in(ns: str, nodelay: bool = False) -> socket.socket:
    with netns.enter(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(30)
    return s


def linux_to_server(ns: str, ip: str, size: int) -> float:
    s = sock_in(ns)
    s.connect((ip, 9))
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


def server_to_linux(ns: str, ip: str, size: int) -> float:
    s = sock_in(ns)
    s.connect((ip, 19))
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


def request_response(ns: str, ip: str, rounds: int) -> list[float]:
    s = sock_in(ns, nodelay=True)
    s.connect((ip, 7))
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


def reuse_time_wait(ns: str) -> None:
    """Let connect() in the client namespace NS take a port whose TIME_WAIT is over a second
    old (net.ipv4.tcp_tw_reuse=1, a setting of that namespace alone; Linux's default, 2,
    allows it only towards loopback addresses). The client closes first, so every connect
    leaves a TIME_WAIT for 60 s (RFC 9293 §3.6.1): from about 14,000 of them -- half of the
    ephemeral range, i.e. --repeat 7 and more within a minute -- Linux's search for a free
    port in connect() took ~2.3 ms instead of ~0.1, so the connect figure measured that
    search, and at 28,000 connect() failed (EADDRNOTAVAIL). Set on both sides' client
    namespaces alike."""
    with netns.enter(ns), open("/proc/sys/net/ipv4/tcp_tw_reuse", "w") as f:
        f.write("1")


def connects(ns: str, ip: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        s = sock_in(ns)
        t0 = time.perf_counter_ns()
        s.connect((ip, 9))
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


MSS = 1448   # payload of a full segment at MTU 1500 with timestamps: the unit of "per segment"


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds process PID has used so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process PID has used so far."""
    return sum(cpu_times(pid))


MEASURES = ("rr", "connect", "up", "down")


SLICES = 10   # a latency measure alternates the two sides this many times in one round


def latencies(what: str, sides: list[tuple[str, str, str]], args, flip: int) -> dict:
    """rr or connect on every side, in SLICES alternating slices (the order flipping from one
    slice to the next): one frame each way gains nothing from batching, so the figure moves
    by 2x with the machine's drift and with where the scheduler puts the processes, phases
    that last seconds -- sliced, they hit both sides alike.  Returns {side: figures}."""
    samples: dict[str, list[float]] = {name: [] for name, _, _ in sides}
    n = (args.rounds if what == "rr" else args.connects) // SLICES
    for c in range(SLICES):
        for name, ns, ip in (sides if (flip + c) % 2 == 0 else sides[::-1]):
            samples[name] += request_response(ns, ip, n) if what == "rr" else connects(ns, ip, n)
    return {name: {f"{what}_p50_us": pct(v, 50), f"{what}_p99_us": pct(v, 99)}
            for name, v in samples.items()}


def measure(what: str, ns: str, ip: str, args, size: int, pid: int) -> dict:
    """One bulk transfer against the server at IP, clients in namespace NS; PID is the
    process in the middle (forwarder or wirestack), whose CPU time per full-size data
    segment is recorded."""
    c0 = cpu_seconds(pid)
    if what == "up":
        mbs = linux_to_server(ns, ip, size)
        return {"linux_to_ws": mbs, "cpu_up_us": (cpu_seconds(pid) - c0) / (size / MSS) * 1e6}
    mbs = server_to_linux(ns, ip, size)
    return {"ws_to_linux": mbs, "cpu_down_us": (cpu_seconds(pid) - c0) / (size / MSS) * 1e6}


def wait_ready(proc: subprocess.Popen, what: str) -> None:
    """Read start-up lines (serve prints a banner first) until "ready"; fail if the process ends."""
    seen = []
    for line in proc.stdout:
        if line.strip() == "ready":
            return
        seen.append(line)
    proc.wait()         # stdout ended: the process is gone, so reading stderr cannot block
    raise RuntimeError(f"{what} did not start: {''.join(seen)}{proc.stderr.read()}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None)
            for k in runs[0] if any(r.get(k) is not None for r in runs)}


def run_ratios(ws_runs: list[dict], ref_runs: list[dict]) -> dict[str, list[float]]:
    """Per measure, each run's wirestack figure over the reference's in the SAME run, in
    run order: the two were measured back to back (or in alternating slices), in one phase
    of the machine, so each run's ratio is a fair pair even when the machine's speed moved
    between runs -- a ratio of two medians would pair figures from different runs."""
    pairs: dict[str, list[float]] = {}
    for ws, ref in zip(ws_runs, ref_runs):
        for k, v in ws.items():
            if v is not None and ref.get(k):
                pairs.setdefault(k, []).append(v / ref[k])
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=50)
    ap.add_argument("--rounds", type=int, default=1000)
    # A connect takes the client ~0.2 ms (socket, two setns, the handshake, close): 2000 per
    # side make 10 slices of ~40 ms each, long enough against the scheduler's phases, in
    # which the two processes of a pair share a CPU or not, for each slice to see several.
    # (When find_library ran ldconfig at each setns, a connect took 3 ms and 600 sufficed.)
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=1,
                    help="alternate reference and wirestack N times each, report medians")
    ap.add_argument("--iperf3", action="store_true", help="also run iperf3 -c / -R for 3 s each")
    ap.add_argument("--offload", nargs="?", const="all", choices=["all", "csum"],
                    help="wirestack's TAP with virtio-net offloads (serve --offload): TSO/GRO "
                         "by the kernel, to beat the forwarder 3x; 'csum': checksums only, "
                         "frames wire-size, against the plain targets. The reference stays "
                         "without")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tap_bench: needs root and /dev/net/tun (sudo .venv/bin/python bench/tap_bench.py)",
              file=sys.stderr)
        return 1
    if args.iperf3 and shutil.which("iperf3") is None:
        print("tap_bench: --iperf3 needs the iperf3 command", file=sys.stderr)
        return 1

    pid = os.getpid()
    ns = f"ws-bench-{pid}"
    ref_a, ref_b = f"ws-refa-{pid}", f"ws-refb-{pid}"
    serve_argv = [sys.executable, "-m", "wirestack", "serve", "--netns", ns, "--tap", TAP,
                  "--ip", f"{WS_IP}/24", "--peer-ip", "198.18.0.1/24",
                  "--echo", "7", "--discard", "9", "--chargen", "19"]
    if args.iperf3:
        serve_argv += ["--iperf3", "5201"]
    if args.offload:
        serve_argv += ["--offload", args.offload]
    fwd_argv = [sys.executable, os.path.join(HERE, "tap_forwarder.py"), ref_a, ref_b,
                "--ip-a", f"{REF_CLIENT_IP}/24", "--ip-b", f"{REF_IP}/24"]
    svc_argv = ["ip", "netns", "exec", ref_b, sys.executable, os.path.join(HERE, "linux_services.py")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(HERE, "..", "src") + os.pathsep + env.get("PYTHONPATH", "")
    popen = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                 text=True, env=env)
    size = int(args.size_mb * 1e6)
    ws_runs, ref_runs = [], []
    proc = fwd = svc = None
    try:
        netns.create(ref_a)
        netns.create(ref_b)
        fwd = subprocess.Popen(fwd_argv, **popen)
        wait_ready(fwd, "the forwarder")
        svc = subprocess.Popen(svc_argv, **popen)
        wait_ready(svc, "the Linux services")
        proc = subprocess.Popen(serve_argv, **popen)
        wait_ready(proc, "wirestack serve")
        for client_ns in (ref_a, ns):
            reuse_time_wait(client_ns)
        time.sleep(0.3)
        for i in range(args.repeat):
            ref_run: dict = {}
            ws_run: dict = {}
            for k, what in enumerate(MEASURES):
                if what in ("rr", "connect"):
                    got = latencies(what, [("ref", ref_a, REF_IP), ("ws", ns, WS_IP)], args, i + k)
                    ref_run.update(got["ref"])
                    ws_run.update(got["ws"])
                    continue
                # Each transfer runs on both sides back to back, in an order that flips from
                # one to the next, so that a slow phase of the machine hits both.
                order = ("ref", "ws") if (i + k) % 2 == 0 else ("ws", "ref")
                for which in order:
                    if which == "ref":
                        ref_run.update(measure(what, ref_a, REF_IP, args, size, fwd.pid))
                    else:
                        ws_run.update(measure(what, ns, WS_IP, args, size, proc.pid))
            if args.iperf3:
                ws_run["iperf3_up"] = iperf3(ns, False)
                ws_run["iperf3_down"] = iperf3(ns, True)
            ref_runs.append(ref_run)
            ws_runs.append(ws_run)
    except RuntimeError as e:
        print(f"tap_bench: {e}", file=sys.stderr)
        return 1
    finally:
        for p in (proc, svc, fwd):
            stop(p)
        for name in (ns, ref_a, ref_b):
            if netns.exists(name):
                netns.delete(name)

    res, ref = median_of(ws_runs), median_of(ref_runs)
    per_run = run_ratios(ws_runs, ref_runs)
    ratios = {k: statistics.median(v) for k, v in per_run.items()}
    if args.json:
        print(json.dumps({"wirestack": ws_runs, "reference": ref_runs,
                          "median": res, "reference_median": ref, "ratio": ratios,
                          "run_ratios": per_run}, indent=1))
        return 0
    rows = [
        ("Linux -> server (discard)", "linux_to_ws", "MB/s", ".1f"),
        ("server -> Linux (chargen)", "ws_to_linux", "MB/s", ".1f"),
        ("64 B request/response p50", "rr_p50_us", "us", ".0f"),
        ("64 B request/response p99", "rr_p99_us", "us", ".0f"),
        ("connect p50", "connect_p50_us", "us", ".0f"),
        ("connect p99", "connect_p99_us", "us", ".0f"),
        ("CPU per segment, Linux -> srv", "cpu_up_us", "us", ".1f"),
        ("CPU per segment, srv -> Linux", "cpu_down_us", "us", ".1f"),
    ]
    several = len(ws_runs) > 1      # then each run's own ratio is printed too ("runs")
    print(f"wirestack TAP bench: {args.size_mb:g} MB transfers, {args.rounds} round trips, "
          f"{args.connects} connects, medians of {len(ws_runs)} interleaved run(s) "
          + "(ratio: the median of the runs' ratios"
          + (", each run's own in 'runs')" if several else ")")
          + {None: "", "all": ", wirestack with offloads",
             "csum": ", wirestack with checksum offload"}[args.offload])
    print(f"{'measure':<30}{'reference':>14}{'wirestack':>14}{'ratio':>8}  {'target':<9}"
          + (f"{'':<7}runs" if several else ""))
    for name, key, unit, fmt in rows:
        ratio = ratios.get(key, float("nan"))
        target, mark = "", ""
        targets = OFFLOAD_TARGETS if args.offload == "all" else TARGETS
        if key in targets:
            op, bound = targets[key]
            target = f"{op} {bound:g}x"
            ok = ratio >= bound if op == ">=" else ratio <= bound
            mark = "ok" if ok else "MISSED"
        # Each run's own ratio beside the median: how far apart the runs were, and how
        # many of them met the target, show what the median alone hides.
        runs = " ".join(f"{r:.2f}" for r in per_run.get(key, ())) if several else ""
        print(f"{name:<30}{format(ref[key], fmt) + ' ' + unit:>14}{format(res[key], fmt) + ' ' + unit:>14}"
              f"{ratio:>7.2f}x  {target:<9}{mark:<7}{runs}".rstrip())
    print("(CPU: user + system time of the process in the middle -- forwarder or wirestack --")
    print(f" per {MSS}-byte data segment of the bulk transfers; ACKs and kernel work in its "
          "syscalls included)")
    if "iperf3_up" in res:
        print(f"{'iperf3 -c (Linux -> ws)':<30}{'':>14}{res['iperf3_up']:>9.1f} MB/s")
    if "iperf3_down" in res:
        print(f"{'iperf3 -c -R (ws -> Linux)':<30}{'':>14}{res['iperf3_down']:>9.1f} MB/s")
    print()
    print("reference: " + " ".join(["python"] + fwd_argv[1:]))
    print(f"           Linux services (bench/linux_services.py) in {ref_b} at {REF_IP}, "
          f"clients in {ref_a}")
    print("wirestack: " + " ".join(["python"] + serve_argv[1:]))
    print(f"           clients: Linux sockets in namespace {ns} (setns), to {WS_IP} ports 9 "
          "(discard), 19 (chargen), 7 (echo, TCP_NODELAY)")
    if args.iperf3:
        print(f"           ip netns exec {ns} iperf3 -c {WS_IP} -p 5201 -t 3 [-R] -J")
    return 0


if __name__ == "__main__":
    sys.exit(main())
