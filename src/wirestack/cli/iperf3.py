"""`wirestack iperf3 -c HOST`: the iperf3 client, against a stock `iperf3 -s` on a TAP
device's kernel side, or against host b's iperf3-compatible server on the simulated wire."""

from __future__ import annotations

import asyncio
import sys

from .common import (SIM_DELAY_MS, SIM_LOSS, CommandError, add_tap_options, ipv4, nonneg, port,
                     positive_int, probability,
                     run_simulation, usage_error)


def register(sub) -> None:
    p = sub.add_parser("iperf3", help="iperf3 client: measure TCP throughput to an iperf3 server",
                       description="Like `iperf3 -c HOST`. With --tap, the server is a stock "
                                   "`iperf3 -s` on the real network; without, host b "
                                   "(198.18.0.2) of a simulated wire runs wirestack's "
                                   "iperf3-compatible server. TCP tests only.")
    p.add_argument("-c", dest="host", metavar="HOST", type=ipv4, required=True,
                   help="the server's address (simulation: 198.18.0.2)")
    p.add_argument("-p", dest="port", type=port, default=5201, help="the server's port")
    p.add_argument("-t", dest="time", type=nonneg(float), default=3.0, metavar="S",
                   help="seconds to transmit")
    p.add_argument("-R", dest="reverse", action="store_true",
                   help="reverse mode: the server sends, we receive")
    p.add_argument("-P", dest="parallel", type=positive_int, default=1, metavar="N",
                   help="parallel streams")
    g = p.add_argument_group("simulated wire (without --tap)")
    g.add_argument("--seed", type=int, default=1, help="random seed: same seed, same run")
    g.add_argument("--loss", type=probability, default=SIM_LOSS,
                   help="probability that a frame is lost, for each frame in each direction")
    g.add_argument("--delay", type=nonneg(float), default=SIM_DELAY_MS, metavar="MS", help="one-way delay, ms")
    g.add_argument("--rate", type=nonneg(float), default=100.0, metavar="MBPS",
                   help="link rate, Mbit/s (0 = unlimited)")
    add_tap_options(p)
    p.set_defaults(run=cmd_iperf3)


def cmd_iperf3(args, parser) -> int:
    if args.time <= 0:
        raise usage_error("-t must be more than 0 seconds")
    if args.tap:
        from .realnet import _guard, _Setup, connect, wait_for_goodbyes

        async def real() -> int:
            setup = _Setup(args, parser)
            try:
                status = await _client(setup.runtime, args, connect)
                await wait_for_goodbyes(setup.host)
                return status
            finally:
                setup.close()
        return _guard(parser, lambda: asyncio.run(real()))
    for name in ("ip", "peer_ip", "gateway", "mac", "netns"):
        if getattr(args, name):
            raise usage_error(f"--{name.replace('_', '-')} needs --tap (a real network)")
    return _simulated(args)


def _simulated(args) -> int:
    from ..apps.iperf3 import Iperf3Server
    from ..runtime.sim import Network
    from .realnet import connect
    with Network(seed=args.seed) as net:
        a = net.host("a", "198.18.0.1/24")
        b = net.host("b", "198.18.0.2/24")
        net.link(a, b, loss=args.loss, delay_ms=args.delay, rate_mbps=args.rate or None)

        async def main() -> int:
            await b.start_server(Iperf3Server().handler, args.port)
            return await _client(a, args, connect)

        return run_simulation(net, main())


async def _client(runtime, args, connect) -> int:
    from ..apps.iperf3 import Iperf3Error, iperf3_client
    print(f"Connecting to host {args.host}, port {args.port}", flush=True)
    if args.reverse:
        print(f"Reverse mode, remote host {args.host} is sending", flush=True)

    async def open_connection(host, port_):
        return await connect(runtime, host, port_, 10.0)

    try:
        res = await iperf3_client(open_connection, args.host, args.port, seconds=args.time,
                                  reverse=args.reverse, parallel=args.parallel)
    except (Iperf3Error, asyncio.IncompleteReadError, ConnectionError) as exc:
        raise CommandError(f"the test failed: {exc or type(exc).__name__}") from None
    # Each side over its own time, as iperf3 prints them: ours, and the server's streams'
    # end_time (a receiver keeps counting while the sender's buffer drains).
    ours = res.seconds or args.time
    theirs = max([float(st.get("end_time") or 0) for st in res.server_results.get("streams", [])]
                 + [0.0]) or ours
    rows = (("sender", res.sent, theirs if args.reverse else ours),
            ("receiver", res.received, ours if args.reverse else theirs))
    print("- " * 31)
    print("[ ID] Interval           Transfer     Bitrate")
    for role, n, seconds in rows:
        print(f"[SUM]   0.00-{seconds:<6.2f} sec  {_bytes(n):>10}  {_rate(8 * n / seconds):>15}"
              f"                  {role}")
    print("\niperf Done.", flush=True)
    sys.stdout.flush()
    return 0 if res.received > 0 else 1


def _bytes(n: float) -> str:
    """iperf3's units: powers of 1024 for bytes."""
    for unit, size in (("GBytes", 1 << 30), ("MBytes", 1 << 20), ("KBytes", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} Bytes"


def _rate(bps: float) -> str:
    """iperf3's units: powers of 1000 for bits per second."""
    for unit, size in (("Gbits/sec", 1e9), ("Mbits/sec", 1e6), ("Kbits/sec", 1e3)):
        if bps >= size:
            return f"{bps / size:.2f} {unit}"
    return f"{bps:.0f} bits/sec"
