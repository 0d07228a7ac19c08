"""CPU cost of a passive open on the server side, in process. Not a test: it prints figures.

    .venv/bin/python bench/syn_bench.py               # N=3000 connects, median of 3 runs
    .venv/bin/python bench/syn_bench.py -n 5000 -r 5
    .venv/bin/python bench/syn_bench.py --cold -n 300    # caches evicted before each connect
    .venv/bin/python bench/syn_bench.py --profile     # cProfile of the server's phases
    .venv/bin/python bench/syn_bench.py --profile syn # ... of one phase (syn, ack, close)

Two hosts joined by hand (no simulator): a client host connects, the server host listens.
Only the server's work is timed (``time.perf_counter_ns`` around its calls), per connect:

  syn     the SYN in -> the SYN,ACK out     (server.receive + server.transmit)
  ack     the final ACK in -> established    (server.receive + server.transmit)
  accept  listener.accept()
  open    syn + ack + accept: the whole passive open
  close   the client's FIN in, our close(), the last ACK in (the TCB is gone)

By default each connect runs warm (back to back): a lower bound for the cache-cold path a
real runtime sees, and a figure in which fewer calls, objects and stores show up directly.
``--cold`` evicts the CPU caches before each connect, closer to a server that sleeps
between connects (the bytecode's own inline caches stay warm either way).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, "src")

from wirestack.iface.host import Host, HostConfig  # noqa: E402
from wirestack.wire.addr import ip_aton  # noqa: E402

PHASES = ("syn", "ack", "accept", "open", "close")
SERVER_MAC, CLIENT_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _hosts() -> tuple[Host, Host]:
    # ARP entries that never expire: no ARP frame crosses the wire during the run.
    cfg = HostConfig(log_events=False, gratuitous_arp=False, arp_timeout=1 << 62)
    server = Host("server", config=cfg)
    server.add_interface(SERVER_MAC, "198.18.0.1/24")
    client = Host("client", config=HostConfig(log_events=False, gratuitous_arp=False,
                                              arp_timeout=1 << 62))
    client.add_interface(CLIENT_MAC, "198.18.0.2/24")
    server.arp.update(ip_aton("198.18.0.2"), bytes.fromhex(CLIENT_MAC.replace(":", "")), 0, True)
    client.arp.update(ip_aton("198.18.0.1"), bytes.fromhex(SERVER_MAC.replace(":", "")), 0, True)
    return server, client


def run(n: int, hook: Callable[[str, bool], None] | None = None,
        cold: bool = False) -> dict[str, list[int]]:
    """N connects and closes; per phase the server's ns per connect. ``hook(phase, start)``
    is called around each timed phase (for the profiler). ``cold``: 40 MB are copied
    before each connect, so the CPU caches (up to a 32 MB L3) no longer hold the stack's
    code and data (as for a server that slept between connects)."""
    junk = bytearray(40 << 20) if cold else None
    junk2 = bytearray(40 << 20) if cold else None
    server, client = _hosts()
    lsock = server.tcp_socket()
    lsock.bind(("198.18.0.1", 80))
    lsock.listen(128, now=0)
    clock = time.perf_counter_ns
    out: dict[str, list[int]] = {p: [] for p in PHASES}
    now = 1_000_000
    port = 10000

    def deliver(frames: list[tuple[int, bytes]], to: Host, t: int) -> None:
        for _, f in frames:
            to.receive(f, t)

    for i in range(n):
        now += 1_000_000
        port += 1
        if port > 60000:
            port = 10000
        c = client.tcp_socket()
        if junk is not None and junk2 is not None:
            junk2[:] = junk
        c.bind(("198.18.0.2", port))
        c.connect(("198.18.0.1", 80), now=now)
        syn = client.transmit(now)
        if hook:
            hook("syn", True)
        t0 = clock()
        deliver(syn, server, now)
        synack = server.transmit(now)
        t1 = clock()
        if hook:
            hook("syn", False)
        assert len(synack) == 1, synack
        deliver(synack, client, now)
        ack = client.transmit(now)
        if hook:
            hook("ack", True)
        t2 = clock()
        deliver(ack, server, now)
        nothing = server.transmit(now)
        t3 = clock()
        s = lsock.accept()
        t4 = clock()
        if hook:
            hook("ack", False)
        assert s is not None and not nothing
        # Close: the client's FIN arrives, we close too, the client's last ACK ends it.
        c.close(now=now)
        fin = client.transmit(now)
        if hook:
            hook("close", True)
        t5 = clock()
        deliver(fin, server, now)
        server.transmit(now)
        s.close(now=now)
        finack = server.transmit(now)
        t6 = clock()
        deliver(finack, client, now)
        last = client.transmit(now)
        t7 = clock()
        deliver(last, server, now)
        server.transmit(now)
        t8 = clock()
        if hook:
            hook("close", False)
        out["syn"].append(t1 - t0)
        out["ack"].append(t3 - t2)
        out["accept"].append(t4 - t3)
        out["open"].append(t4 - t2 + t1 - t0)
        out["close"].append(t6 - t5 + t8 - t7)
        if i % 500 == 499:
            # The client's TIME_WAITs expire, so its memory stays small.
            now += 120 * 1_000_000_000
            client.transmit(now)
            server.transmit(now)
    assert server.tcp.connection_count() == 0, server.tcp.connection_count()
    assert server.counters["tcp.passive_opens"] == n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="connects per run")
    ap.add_argument("-r", "--runs", type=int, default=3, help="runs; the median is printed")
    ap.add_argument("--cold", action="store_true",
                    help="evict the CPU caches before each connect (14 ms each: use -n 300)")
    ap.add_argument("--profile", nargs="?", const="all", choices=("all", "syn", "ack", "close"),
                    help="cProfile the timed phases (or one of them)")
    args = ap.parse_args()
    if args.profile:
        prof = cProfile.Profile()

        def hook(phase: str, start: bool) -> None:
            if args.profile in ("all", phase):
                prof.enable() if start else prof.disable()
        run(args.n, hook)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    run(200)     # warm-up: imports, first-call costs
    meds: dict[str, list[float]] = {p: [] for p in PHASES}
    cpu0 = time.process_time()
    for _ in range(args.runs):
        out = run(args.n, cold=args.cold)
        for p in PHASES:
            meds[p].append(statistics.median(out[p]) / 1000)
    cpu = time.process_time() - cpu0
    print(f"passive open{' (cold caches)' if args.cold else ''}, server CPU per connect, µs (median over {args.n} connects; "
          f"median of {args.runs} runs; {cpu:.1f} s CPU in all)")
    for p in PHASES:
        runs = " ".join(f"{v:6.1f}" for v in meds[p])
        print(f"  {p:<7} {statistics.median(meds[p]):6.1f}   (runs: {runs})")


if __name__ == "__main__":
    main()
