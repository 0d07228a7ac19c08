"""TCP benchmarks on the simulated wire. Not a test: it prints figures.

    .venv/bin/python bench/sim_bench.py            # everything
    .venv/bin/python bench/sim_bench.py cpu        # (a) wall-clock speed of the stack
    .venv/bin/python bench/sim_bench.py goodput    # (b) virtual-time goodput vs. the Mathis estimate
    .venv/bin/python bench/sim_bench.py lfn        # long fat pipe: window scaling on/off

(a) bulk transfer between two wirestack hosts on a perfect link (no rate limit): wall-clock
    MB/s and CPU µs per data segment (both hosts and the simulator together).
(b) goodput / link rate on 10 Mbit/s with 40 ms and 200 ms RTT at 0 %, 1 %, 5 % loss, for
    NewReno and CUBIC with SACK on and off, next to the Mathis et al. estimate
    MSS/RTT * 1.22/sqrt(p) (a model of Reno's steady state; capped at the link rate).
"""

from __future__ import annotations

import math
import sys
import time

sys.path.insert(0, "src")

from wirestack.labs.transfer import run_transfer  # noqa: E402


def transfer(size: int, *, seed: int = 1, mtu: int = 1500, tcp: dict | None = None,
             rcvbuf: int | None = None, **link) -> dict:
    """One measured transfer a -> b (see wirestack.labs.transfer); adds wall and CPU time."""
    opts = dict(tcp or {})
    if rcvbuf:
        opts.setdefault("rcvbuf", rcvbuf)
        opts.setdefault("sndbuf", rcvbuf)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    r = run_transfer(size, seed=seed, host_mtu=mtu, tcp=opts, log_events=False, deadline=36000,
                     count_segments=False, **link)
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            "virtual_s": r.virtual_seconds, "ok": r.sha256_ok, "stats": r.sender, "result": r}


def bench_cpu() -> None:
    print("(a) bulk transfer, perfect simulated link, wall clock (two hosts + simulator in one process)")
    print(f"{'MTU':>6} {'size':>8} {'MB/s':>8} {'segments':>9} {'CPU µs/segment':>15}  sha256")
    for mtu, size in ((1500, 20_000_000), (9000, 50_000_000)):
        r = transfer(size, mtu=mtu, rcvbuf=4 << 20)
        segs = r["stats"].get("segments_out", 0) or 1
        print(f"{mtu:>6} {size // 1_000_000:>6}MB {size / r['wall_s'] / 1e6:>8.1f} {segs:>9} "
              f"{r['cpu_s'] / segs * 1e6:>15.1f}  {'ok' if r['ok'] else 'MISMATCH'}")


def mathis(mss: int, rtt_s: float, p: float, rate_bps: float) -> float:
    if p <= 0:
        return 1.0
    return min(1.0, mss * 8 / rtt_s * 1.22 / math.sqrt(p) / rate_bps)


def bench_goodput(rtts=(0.040, 0.200), losses=(0.0, 0.01, 0.05),
                  variants=(("newreno", False), ("newreno", True), ("cubic", False), ("cubic", True)),
                  size=None, seeds=(1, 2, 3)) -> None:
    rate = 10_000_000
    mss = 1448  # with timestamps
    print("(b) goodput / link rate on 10 Mbit/s (mean of seeds %s); Mathis = MSS/RTT*1.22/sqrt(p)" % (seeds,))
    print(f"{'RTT':>6} {'loss':>5} {'cc':>8} {'SACK':>5} {'goodput':>8} {'Mathis':>7}  sha256")
    for rtt in rtts:
        for p in losses:
            for cc, sack in variants:
                fractions = []
                ok = True
                n = size or (4_000_000 if rtt < 0.1 else 6_000_000)
                for seed in seeds:
                    try:
                        r = transfer(n, seed=seed, loss=p, delay_ms=rtt * 500, rate_mbps=10,
                                     queue_limit=max(50, int(rate * rtt / 8 / 1500 * 1.2)),
                                     tcp={"congestion_control": cc, "sack": sack}, rcvbuf=4 << 20)
                    except TypeError as exc:  # an option this TCP does not know yet
                        print(f"  ({cc}, sack={sack}) not available: {exc}")
                        ok = False
                        break
                    fractions.append(n * 8 / r["virtual_s"] / rate)
                    ok = ok and r["ok"]
                if not fractions:
                    continue
                g = sum(fractions) / len(fractions)
                print(f"{rtt * 1000:>4.0f}ms {p * 100:>4.0f}% {cc:>8} {'on' if sack else 'off':>5} "
                      f"{g:>8.3f} {mathis(mss, rtt, p, rate):>7.3f}  {'ok' if ok else 'MISMATCH'}")


def bench_lfn() -> None:
    print("long fat pipe: 100 Mbit/s, 200 ms RTT (BDP 2.5 MB), 0% loss, 16 MB buffers")
    print(f"{'window scaling':>15} {'goodput':>8}  sha256")
    for ws in (True, False):
        size = 60_000_000
        r = transfer(size, delay_ms=100, rate_mbps=100, queue_limit=2500,
                     tcp={"window_scaling": ws}, rcvbuf=16 << 20)
        print(f"{'on' if ws else 'off':>15} {size * 8 / r['virtual_s'] / 100e6:>8.3f}  {'ok' if r['ok'] else 'MISMATCH'}")


if __name__ == "__main__":
    which = sys.argv[1:] or ["cpu", "goodput", "lfn"]
    if "cpu" in which:
        bench_cpu()
        print()
    if "goodput" in which:
        bench_goodput()
        print()
    if "lfn" in which:
        bench_lfn()
