"""The impairment matrix: a 1 MB transfer must arrive intact (sha256) for each of 50 seeds
under each impairment, and both ends must end in CLOSED — the active closer through
TIME_WAIT — with no connection state left in either host.

Each case runs the whole stack (TCP, IP, ARP, the simulated NICs and link) on virtual time.
"""

import asyncio
import hashlib
import random

import pytest

from wirestack.runtime.sim import Network

SIZE = 1_000_000
SEEDS = range(1, 51)

CONDITIONS = {
    "loss10": dict(loss=0.10),
    "reorder20": dict(reorder=0.20),
    "duplicate5": dict(duplicate=0.05),
    "corrupt1_nofcs": dict(corrupt=0.01),
    "bursty": dict(gilbert=(0.01, 0.3)),  # Gilbert-Elliott: ~3% loss in bursts of ~3 frames
    "combined": dict(loss=0.10, reorder=0.20, duplicate=0.05, corrupt=0.01, gilbert=(0.01, 0.3)),
}


def run_transfer(seed: int, impairments: dict, tcp_options: dict | None = None):
    no_fcs = "corrupt" in impairments
    net = Network(seed=seed)
    a = net.host("a", "198.18.0.1/24", check_fcs=not no_fcs)
    b = net.host("b", "198.18.0.2/24", check_fcs=not no_fcs)
    net.link(a, b, delay_ms=5, jitter_ms=1, rate_mbps=100, **impairments)
    payload = random.Random(seed).randbytes(SIZE)
    opts = tcp_options or {}
    out = {}

    async def main():
        received = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            h = hashlib.sha256()
            while data := await reader.read(65536):
                h.update(data)
            received.set_result(h.hexdigest())
            writer.close()
            out["server_sock"] = writer.get_extra_info("socket")

        server = await b.start_server(sink, 5001, **opts)
        reader, writer = await a.open_connection("198.18.0.2", 5001, **opts)
        out["client_sock"] = writer.get_extra_info("socket")
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        out["digest"] = await received
        assert await reader.read() == b""   # the server's FIN
        writer.close()
        server.close()

    net.run(main(), timeout=7200)
    net.settle(limit=3600)  # TIME_WAIT (2 MSL) and any last retransmission run out
    out["a"], out["b"] = a, b
    return out, hashlib.sha256(payload).hexdigest()


def assert_clean_end(out):
    a, b = out["a"], out["b"]
    client_states = [e["new"] for e in a.log.filter("state")]
    server_states = [e["new"] for e in b.log.filter("state") if e.get("old") != "CLOSED"]
    assert "TIME_WAIT" in client_states, client_states
    assert client_states[-1] == "CLOSED", client_states
    assert server_states[-1] == "CLOSED", server_states
    assert a.host.tcp.connection_count() == 0
    assert b.host.tcp.connection_count() == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_transfer_survives_the_wire(condition, seed):
    out, digest = run_transfer(seed, CONDITIONS[condition])
    assert out["digest"] == digest
    assert_clean_end(out)
    if condition.startswith("corrupt"):
        # With the FCS unchecked the corrupted frames reach the hosts; the TCP (or IP)
        # checksum is what keeps them out of the byte stream.
        caught = sum(h.counters[k] for h in (out["a"], out["b"])
                     for k in ("tcp.in_csum_errors", "ip.in_bad_checksum"))
        assert caught > 0


# Issue 4: the same matrix with every combination of the performance/robustness switches.
# 24 combinations x 6 conditions x the same 50 seeds: 7,200 transfers, several minutes.
COMBO_SEEDS = SEEDS
COMBOS = [dict(window_scaling=ws, timestamps=ts, sack=sack, congestion_control=cc)
          for ws in (True, False) for ts in (True, False) for sack in (True, False)
          for cc in ("newreno", "cubic", "none")]


def _combo_id(c):
    return "-".join([("ws" if c["window_scaling"] else "nows"), ("ts" if c["timestamps"] else "nots"),
                     ("sack" if c["sack"] else "nosack"), c["congestion_control"]])


@pytest.mark.slow  # 7,200 transfers: `make test` runs it, `make test-fast` skips it
@pytest.mark.parametrize("seed", COMBO_SEEDS)
@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_transfer_survives_the_wire_with_every_switch_combination(combo, condition, seed):
    out, digest = run_transfer(seed, CONDITIONS[condition], tcp_options=combo)
    assert out["digest"] == digest
    assert_clean_end(out)
    stats = out["client_sock"].stats()
    assert stats["sack"] == combo["sack"]
    assert stats["timestamps"] == combo["timestamps"]
    assert stats["window_scaling"] == combo["window_scaling"]
    assert stats["congestion_control"] == combo["congestion_control"]
