"""TCP benchmarks on the simulated wire. Not a test: it prints figures.

    .venv/bin/python bench/sim_bench.py            # everything
    .venv/bin/python bench/sim_bench.py cpu        # (a) wall-clock speed of the stack
    .venv/bin/python bench/sim_bench.py goodput    # (b) virtual-time goodput vs. the Mathis estimate
    .venv/bin/python bench/sim_bench.py lfn        # long fat pipe: window scaling on/off
    .venv/bin/python bench/sim_bench.py stream     # (c) CPU per segment through the stream API

(a) bulk transfer between two wirestack hosts on a perfect link (no rate limit): wall-clock
    MB/s and CPU µs per data segment (both hosts and the simulator together).
(c) the same, but through the public stream API (start_server / open_connection, reader.read,
    writer.write + drain) on virtual time: CPU µs per 1448-byte data segment for one flow
    and for 1,000 concurrent flows, so that a slowdown in the API layer (streams, tasks,
    per-connection bookkeeping) shows up next to the raw engine's figure of (a).
(b) goodput / link rate on 10 Mbit/s with 40 ms and 200 ms RTT at 0 %, 1 %, 5 % loss, for
    NewReno and CUBIC with SACK on and off, next to the Mathis et al. estimate
    MSS/RTT * 1.22/sqrt(p) (a model of Reno's steady state; capped at the link rate).
"""

from __future__ import annotations

import asyncio
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


STREAM_MSS = 1448   # a full segment's payload at MTU 1500 with timestamps


def stream_cpu(flows: int, per_flow: int, chunk: int = 65536) -> dict:
    """FLOWS connections from host a to a discard-like server on b, each writing PER_FLOW
    bytes (write + drain in CHUNK pieces) and closing; all flows run at once.  Returns CPU
    seconds and the number of full data segments the bytes make (ceil(per_flow / MSS)
    per flow) -- the whole process: both hosts, the simulated link and the asyncio tasks."""
    from wirestack.runtime.sim import Network
    net = Network(seed=1, decisions="off", log_events=False)
    a = net.host("a", "198.18.0.1/16")
    b = net.host("b", "198.18.0.2/16")
    net.link(a, b, delay_ms=0.05)
    received = [0]
    data = b"\xa5" * chunk

    async def sink(reader, writer):
        while True:
            got = await reader.read(65536)
            if not got:
                break
            received[0] += len(got)
        writer.close()
        await writer.wait_closed()

    async def flow():
        reader, writer = await a.open_connection("198.18.0.2", 9)
        left = per_flow
        while left > 0:
            n = min(left, chunk)
            writer.write(data[:n])
            await writer.drain()
            left -= n
        writer.write_eof()
        await reader.read()     # b"" once the server has seen everything and closed too
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await b.start_server(sink, 9, backlog=flows + 16)
        await asyncio.gather(*(flow() for _ in range(flows)))
        server.close()

    wall0, cpu0 = time.perf_counter(), time.process_time()
    net.run(main())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    net.close()
    segs = flows * -(-per_flow // STREAM_MSS)
    return {"cpu_s": cpu, "wall_s": wall, "segments": segs, "ok": received[0] == flows * per_flow}


def bench_stream() -> None:
    print("(c) stream API on a simulated 0.1 ms RTT link: start_server / open_connection, write + drain,")
    print("    CPU of the whole process per 1448-byte data segment (both hosts, link, asyncio tasks)")
    print(f"{'flows':>6} {'per flow':>9} {'total':>8} {'segments':>9} {'MB/s':>7} {'CPU µs/segment':>15}  bytes")
    for flows, per_flow in ((1, 20_000_000), (1000, 50_000)):
        r = stream_cpu(flows, per_flow)
        total = flows * per_flow
        print(f"{flows:>6} {per_flow / 1e6:>7.2f}MB {total / 1e6:>6.0f}MB {r['segments']:>9} "
              f"{total / r['wall_s'] / 1e6:>7.1f} {r['cpu_s'] / r['segments'] * 1e6:>15.1f}  "
              f"{'ok' if r['ok'] else 'MISSING'}")


def mathis(mss: int, rtt_s: float, p: float, rate_bps: float) -> float:
    """Mathis et al. (1997): BW = MSS/RTT * C/sqrt(p), C = 1.22; as a fraction of the link."""
    if p <= 0:
        return float("inf")
    return mss * 8 / rtt_s * 1.22 / math.sqrt(p) / rate_bps


MSS = 1448                      # 1460 minus the 12-byte timestamp option
WIRE_MAX = MSS / (MSS + 52 + 18)  # payload / (payload + TCP/IP headers + Ethernet + FCS)


def bench_goodput(rtts=(0.040, 0.200), losses=(0.0, 0.01, 0.05),
                  variants=(("newreno", False), ("newreno", True), ("cubic", False), ("cubic", True)),
                  seeds=(1, 2, 3)) -> None:
    rate = 10_000_000
    print("(b) goodput / link rate on 10 Mbit/s; loss on the data direction only (Mathis's p);")
    print(f"    drop-tail queue of max(50 frames, 1.2 BDP); mean of seeds {seeds}.")
    print(f"    Whole transfer, and without the first 5 s (like iperf3 -O 5). Protocol maximum "
          f"{WIRE_MAX:.3f}.")
    print(f"{'RTT':>6} {'loss':>5} {'cc':>8} {'SACK':>5} {'size':>6} {'goodput':>8} {'-O 5s':>6} "
          f"{'Mathis':>7} {'RTOs':>5}  sha256")
    for rtt in rtts:
        queue = max(50, int(rate * rtt / 8 / 1518 * 1.2))
        for p in losses:
            # Long enough for a steady state: ~30 s of line rate without loss, less with it.
            size = 40_000_000 if p == 0 else (8_000_000 if rtt < 0.1 else 3_000_000)
            for cc, sack in variants:
                whole, steady, rtos, ok = [], [], 0, True
                for seed in seeds:
                    r = transfer(size, seed=seed, delay_ms=rtt * 500, rate_mbps=10, queue_limit=queue,
                                 loss=p, b_to_a=dict(delay_ms=rtt * 500, rate_mbps=10, queue_limit=queue),
                                 tcp={"congestion_control": cc, "sack": sack}, rcvbuf=4 << 20)
                    res = r["result"]
                    whole.append(size * 8 / r["virtual_s"] / rate)
                    steady.append(res.goodput_after(5.0) / rate)
                    rtos += res.counters["a"].get("tcp.rto_timeouts", 0)
                    ok = ok and r["ok"]
                m = mathis(MSS, rtt, p, rate)
                print(f"{rtt * 1000:>4.0f}ms {p * 100:>4.0f}% {cc:>8} {'on' if sack else 'off':>5} "
                      f"{size // 1_000_000:>4}MB {sum(whole) / len(whole):>8.3f} {sum(steady) / len(steady):>6.3f} "
                      f"{min(m, 1.0) if m != float('inf') else 1.0:>7.3f} {rtos / len(seeds):>5.1f}  "
                      f"{'ok' if ok else 'MISMATCH'}")


def bench_lfn(size: int = 600_000_000) -> None:
    print(f"long fat pipe: 100 Mbit/s, 200 ms RTT (BDP 2.5 MB), 0% loss, 16 MB buffers, "
          f"queue 2500 frames, {size // 1_000_000} MB")
    print(f"{'window scaling':>15} {'goodput':>8} {'-O 5s':>6} {'RTOs':>5}  sha256")
    for ws in (True, False):
        r = transfer(size if ws else size // 10, delay_ms=100, rate_mbps=100, queue_limit=2500,
                     tcp={"window_scaling": ws}, rcvbuf=16 << 20)
        res = r["result"]
        n = size if ws else size // 10
        print(f"{'on' if ws else 'off':>15} {n * 8 / r['virtual_s'] / 100e6:>8.3f} "
              f"{res.goodput_after(5.0) / 100e6:>6.3f} {res.counters['a'].get('tcp.rto_timeouts', 0):>5}  "
              f"{'ok' if r['ok'] else 'MISMATCH'}")
    print("  (without window scaling the window is at most 64 KB: 64 KB / 200 ms = 2.6 Mbit/s)")


if __name__ == "__main__":
    which = sys.argv[1:] or ["cpu", "stream", "goodput", "lfn"]
    if "cpu" in which:
        bench_cpu()
        print()
    if "stream" in which:
        bench_stream()
        print()
    if "goodput" in which:
        bench_goodput()
        print()
    if "lfn" in which:
        bench_lfn()
