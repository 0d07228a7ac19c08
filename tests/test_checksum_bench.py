"""bench/checksum_bench.py times several ways of summing a segment; its figures mean
something only if every way it times computes the RFC 1071 sum. (The figures themselves are
never asserted: tests do not time anything.)"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "bench")
sys.path.insert(0, BENCH)

import checksum_bench  # noqa: E402

from wirestack.wire.checksum import internet_checksum  # noqa: E402


@pytest.mark.parametrize("size", [1, 2, 3, 20, 1447, 1448, 9001])
def test_every_way_the_bench_times_gives_the_rfc_1071_checksum(size):
    rng = random.Random(size)
    samples = [rng.randbytes(size) for _ in range(10)] + [bytes(size), b"\xff" * size]
    for original in samples:
        data = checksum_bench.padded(original)       # an odd length: one zero byte more
        for name, fn, factor in checksum_bench.ways(len(data)):
            v = fn(data) % 0xFFFF * factor % 0xFFFF
            # A non-zero sum that is a multiple of 0xFFFF is 0xFFFF (RFC 1071 §1).
            total = v or (0xFFFF if any(data) else 0)
            assert 0xFFFF - total == internet_checksum(original), (name, size)
            assert checksum_bench.agrees(fn, factor, data), (name, size)


def test_a_way_that_sums_wrongly_is_told_apart():
    data = checksum_bench.padded(random.Random(7).randbytes(1448))
    # The bytes read little-endian without the factor that swaps them back: wrong.
    assert not checksum_bench.agrees(lambda d: int.from_bytes(d, "little"), 1, data)


def test_the_bench_prints_a_time_for_every_way_and_both_offloads():
    out = subprocess.run([sys.executable, os.path.join(BENCH, "checksum_bench.py"), "--repeat", "1",
                          "--size", "301"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    assert "sums wrongly" not in out
    timed = [line for line in out.splitlines() if line.rstrip().endswith("x") and "µs" in line]
    assert len(timed) == len(checksum_bench.ways(302))
    assert "TSO/GSO" in out and "GRO" in out
