"""A live wirestack host under a spoofed SYN flood and an out-of-window RST flood over TAP
(not a test: prints figures).

    sudo .venv/bin/python bench/flood_tap.py [--syn-rates 2000,5000,10000] \\
                                             [--rst-rates 5000,10000,20000] [--seconds 5]

It starts ``wirestack serve`` in a namespace it names ws-flood-<pid> (serve creates the
namespace and the TAP device, and removes both on SIGTERM) with discard on port 9 and
chargen on port 19, then, for each rate, from a raw socket inside that namespace:

* SYN flood: SYNs from random spoofed sources in 198.19.0.0/16 (off-link: wirestack has no
  route back, so its SYN,ACKs and cookies die at once, as they would towards a black hole)
  at RATE per second for SECONDS; meanwhile a Linux client connects to discard and sends
  1 MB. Reported: connect time and time to move the 1 MB (goal: within 5 s).
* RST flood: a Linux client reads chargen; RSTs that carry the connection's addresses and
  ports but random sequence numbers (out of the window but for a 1-in-65,000 chance) arrive
  at RATE per second. Reported: chargen MB/s during the flood next to the same measurement
  without it, and whether the connection survived.

The flood rate is what the sender achieved (it paces in 10 ms batches; on a busy machine it
may fall short of the goal). wirestack's counters (SIGUSR1 report) are printed after each
phase. Only 198.18.0.0/15 addresses are used; nothing is added to the root namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from wirestack.phy import netns  # noqa: E402
from wirestack.wire import ip_aton, ipv4, tcp  # noqa: E402
from tap_bench import stop, wait_ready  # noqa: E402  (serve up to "ready"; SIGTERM, then kill)

WS_IP = "198.18.0.2"
LINUX_IP = "198.18.0.1"
TAP = "wsflood0"


# ---------------------------------------------------------------------- the flooder
def build_pool(kind: str, n: int, rng: random.Random, sport: int = 0) -> list[bytes]:
    """``n`` ready-to-send IPv4 packets (the kernel fills in nothing: IP_HDRINCL)."""
    dst = ip_aton(WS_IP)
    out = []
    for _ in range(n):
        if kind == "syn":
            src = bytes([198, 19, rng.randrange(256), rng.randrange(1, 255)])
            seg = tcp.build(src, dst, rng.randrange(1024, 65536), 9, rng.getrandbits(32), 0,
                            tcp.SYN, 64240, b"", tcp.encode_options(mss=1460))
        else:
            src = ip_aton(LINUX_IP)
            seg = tcp.build(src, dst, sport, 19, rng.getrandbits(32), 0, tcp.RST, 0, b"")
        out.append(ipv4.build(src, dst, 6, seg, ident=rng.randrange(65536)))
    return out


def flood(ns: str, kind: str, rate: int, seconds: float, sport: int = 0) -> tuple[int, float]:
    """Send ``kind`` packets at ``rate``/s for ``seconds`` from a raw socket in ``ns``.
    Returns (packets sent, elapsed seconds)."""
    with netns.enter(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    pool = build_pool(kind, 4096, random.Random(rate), sport)
    addr = (WS_IP, 0)
    sent = 0
    t0 = time.perf_counter()
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    next_t = t0
    i = 0
    n = len(pool)
    while True:
        now = time.perf_counter()
        if now - t0 >= seconds:
            break
        if now < next_t:
            time.sleep(next_t - now)
        for _ in range(per_tick):
            try:
                s.sendto(pool[i], addr)
                sent += 1
            except (BlockingIOError, OSError):
                pass
            i = i + 1 if i + 1 < n else 0
        next_t += tick
    dt = time.perf_counter() - t0
    s.close()
    return sent, dt


# ---------------------------------------------------------------------- the legit side
def sock_in(ns: str) -> socket.socket:
    with netns.enter(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    return s


def legit_transfer(ns: str, size: int) -> dict:
    s = sock_in(ns)
    t0 = time.perf_counter()
    try:
        s.connect((WS_IP, 9))
        t_conn = time.perf_counter() - t0
        s.sendall(b"\x5a" * size)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)             # discard's FIN after ours: every byte arrived
        return {"ok": True, "connect_ms": t_conn * 1e3, "total_s": time.perf_counter() - t0}
    except OSError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "total_s": time.perf_counter() - t0}
    finally:
        s.close()


def chargen_rate(s: socket.socket, seconds: float) -> tuple[float, str | None]:
    buf = bytearray(256 * 1024)
    got = 0
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            n = s.recv_into(buf)
            if not n:
                return got / (time.perf_counter() - t0) / 1e6, "closed"
            got += n
    except OSError as exc:
        return got / (time.perf_counter() - t0) / 1e6, f"{type(exc).__name__}: {exc}"
    return got / (time.perf_counter() - t0) / 1e6, None


# ---------------------------------------------------------------------- main
def counters(proc) -> dict:
    """Ask serve for its SIGUSR1 report and return the counters."""
    proc.send_signal(signal.SIGUSR1)
    while True:
        line = proc.stdout.readline()
        if not line:
            return {}
        if line.startswith("counters "):
            return json.loads(line[len("counters "):])


def delta(after: dict, before: dict, names) -> str:
    return ", ".join(f"{k}={after.get(k, 0) - before.get(k, 0)}" for k in names
                     if after.get(k, 0) - before.get(k, 0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syn-rates", default="2000,5000,10000")
    ap.add_argument("--rst-rates", default="5000,10000,20000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size-mb", type=float, default=1.0)
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("flood_tap: needs root and /dev/net/tun", file=sys.stderr)
        return 1
    ns = f"ws-flood-{os.getpid()}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(HERE, "..", "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "wirestack", "serve", "--netns", ns,
                             "--tap", TAP, "--ip", f"{WS_IP}/24", "--peer-ip", f"{LINUX_IP}/24",
                             "--discard", "9", "--chargen", "19"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    size = int(args.size_mb * 1e6)
    watch = ("tcp.in_segs", "tcp.syncookies_sent", "tcp.listen_overflow", "tcp.passive_opens",
             "tcp.in_rst_out_of_window", "tcp.in_rst_challenged", "tcp.challenge_acks",
             "tcp.challenge_ack_limited", "tcp.in_rsts", "ip.out_no_routes")
    try:
        try:
            wait_ready(proc, "wirestack serve")
        except RuntimeError as exc:
            print(f"flood_tap: {exc}", file=sys.stderr)
            return 1
        time.sleep(0.3)
        base = legit_transfer(ns, size)            # also resolves ARP both ways
        print(f"no flood: 1 MB to discard in {base.get('total_s', 0):.2f} s "
              f"(connect {base.get('connect_ms', 0):.1f} ms)")
        for rate in [int(x) for x in args.syn_rates.split(",") if x]:
            before = counters(proc)
            box = {}
            th = threading.Thread(target=lambda box=box, rate=rate: box.update(r=flood(ns, "syn", rate, args.seconds)))
            th.start()
            time.sleep(min(1.0, args.seconds / 3))  # the flood is on before the client comes
            res = legit_transfer(ns, size)
            th.join()
            sent, dt = box["r"]
            after = counters(proc)
            verdict = "ok" if res["ok"] and res["total_s"] <= 5 else "FAILED"
            detail = (f"connect {res['connect_ms']:.1f} ms, 1 MB in {res['total_s']:.2f} s"
                      if res["ok"] else res["error"])
            print(f"SYN flood {sent / dt:8,.0f}/s (goal {rate:,}): legit client {detail} -> {verdict}")
            print(f"    {delta(after, before, watch)}")
        for rate in [int(x) for x in args.rst_rates.split(",") if x]:
            s = sock_in(ns)
            s.connect((WS_IP, 19))
            quiet, _ = chargen_rate(s, min(2.0, args.seconds))
            before = counters(proc)
            box = {}
            th = threading.Thread(target=lambda box=box, rate=rate, s=s: box.update(
                r=flood(ns, "rst", rate, args.seconds, s.getsockname()[1])))
            th.start()
            loud, err = chargen_rate(s, args.seconds)
            th.join()
            sent, dt = box["r"]
            after = counters(proc)
            s.close()
            verdict = "ok" if err is None and loud > 0 else "FAILED"
            print(f"RST flood {sent / dt:8,.0f}/s (goal {rate:,}): chargen {loud:.2f} MB/s "
                  f"(without flood {quiet:.2f} MB/s){' ' + err if err else ''} -> {verdict}")
            print(f"    {delta(after, before, watch)}")
    finally:
        stop(proc)
        if netns.exists(ns):
            netns.delete(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
