"""Where wirestack's time goes on the real TAP path (not a test: prints a profile).

    sudo .venv/bin/python bench/tap_profile.py {up,down,rr,connect} [--size-mb 20]
                                               [--cprofile FILE] [--top 25]
                                               [--offload [csum]] [--no-gro] [--no-gso]

Starts `wirestack serve` (under cProfile with --cprofile), drives ONE workload from a Linux
socket in its namespace -- up: Linux -> wirestack bulk into discard; down: chargen ->
Linux; rr: 64-byte echo round trips; connect: fresh connections -- and prints the serve
process's CPU time (user+system, from /proc) per TCP data segment of 1448 bytes (bulk) or
per round trip / connection, then the top functions by internal time.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import tap_bench  # noqa: E402
from wirestack.phy import netns  # noqa: E402

MSS = tap_bench.MSS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", choices=["up", "down", "rr", "connect"])
    ap.add_argument("--size-mb", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--connects", type=int, default=500)
    ap.add_argument("--cprofile", metavar="FILE")
    ap.add_argument("--py-spy", metavar="FILE", dest="pyspy",
                    help="sample the serve process with py-spy during the workload "
                         "(collapsed stacks: one 'stack count' line each)")
    ap.add_argument("--offload", nargs="?", const="all", choices=["all", "csum"], help="serve --offload [csum]")
    ap.add_argument("--no-gro", action="store_true", help="serve --no-gro")
    ap.add_argument("--no-gso", action="store_true", help="serve --no-gso")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    ns = f"ws-prof-{os.getpid()}"
    argv = [sys.executable]
    if args.cprofile:
        argv += ["-m", "cProfile", "-o", args.cprofile]
    argv += ["-m", "wirestack", "serve", "--netns", ns, "--tap", "wsprof0", "--ip",
             f"{tap_bench.WS_IP}/24", "--peer-ip", "198.18.0.1/24",
             "--echo", "7", "--discard", "9", "--chargen", "19"]
    if args.offload:
        argv += ["--offload", args.offload]
    argv += [flag for flag, on in (("--no-gro", args.no_gro), ("--no-gso", args.no_gso)) if on]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(HERE, "..", "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        tap_bench.wait_ready(proc, "wirestack serve")
        tap_bench.reuse_time_wait(ns)
        time.sleep(0.3)
        ip, size = tap_bench.WS_IP, int(args.size_mb * 1e6)
        spy = None
        if args.pyspy:
            spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"),
                                    "record", "-r", "500", "-f", "raw", "-o", args.pyspy,
                                    "--pid", str(proc.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        c0, t0 = tap_bench.cpu_times(proc.pid), time.perf_counter()
        if args.workload == "up":
            figure, units = f"{tap_bench.linux_to_server(ns, ip, size):.1f} MB/s", size / MSS
        elif args.workload == "down":
            figure, units = f"{tap_bench.server_to_linux(ns, ip, size):.1f} MB/s", size / MSS
        elif args.workload == "rr":
            rr = tap_bench.request_response(ns, ip, args.rounds)
            figure, units = f"p50 {tap_bench.pct(rr, 50):.0f} us", args.rounds + 50
        else:
            cn = tap_bench.connects(ns, ip, args.connects)
            figure, units = f"p50 {tap_bench.pct(cn, 50):.0f} us", args.connects
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        (u1, s1), wall = tap_bench.cpu_times(proc.pid), time.perf_counter() - t0
        user, system = u1 - c0[0], s1 - c0[1]
        cpu = user + system
        what = "segment" if args.workload in ("up", "down") else (
            "round trip" if args.workload == "rr" else "connection")
        print(f"{args.workload}: {figure}; serve CPU {cpu:.2f} s of {wall:.2f} s wall = "
              f"{cpu / units * 1e6:.1f} us per {what} (user {user / units * 1e6:.1f}, "
              f"system {system / units * 1e6:.1f})")
    finally:
        tap_bench.stop(proc)
        if netns.exists(ns):
            netns.delete(ns)
    if args.cprofile:
        pstats.Stats(args.cprofile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
