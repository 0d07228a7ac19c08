"""What summing a segment costs in CPython, next to the Python work wirestack's software
offloads do per frame. Not a test: it prints figures.

    .venv/bin/python bench/checksum_bench.py [--size 1448] [--repeat 7]

Why: in the TAP bench's bulk transfers the forwarder moves frames without reading a byte
of them in Python, while wirestack sums every byte it sends or receives (RFC 1071: the IP
and TCP checksums; the kernel's TAP has no checksum offload unless ``--offload``). Where
that sum stands against the other ways CPython offers to add up 16-bit words is the floor
of wirestack's CPU per data segment, so it is printed here for the interpreter at hand:
each way's µs per ``--size`` bytes, the best of ``--repeat`` timings, and its cost relative
to ``int.from_bytes`` alone (reading the bytes as one number, which every fast way does;
the ones that do not are several times slower). Every way's result is checked against
``checksum.internet_checksum`` first: a way that sums wrongly is reported, not timed.

The last rows are the offloads' own per-frame work (``sim/offload.py``): cutting a
44-piece super-segment into frames with both checksums (TSO/GSO), and checking and merging
40 in-order frames (GRO), per frame.
"""

from __future__ import annotations

import argparse
import array
import os
import platform
import random
import struct
import sys
import timeit
from collections.abc import Callable
from functools import partial

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from wirestack.sim.offload import Offload  # noqa: E402
from wirestack.wire.checksum import fold_plan, internet_checksum, reduced_sum  # noqa: E402

_from_bytes = int.from_bytes


def _words_loop(data: bytes) -> int:
    """The textbook loop over 16-bit words (RFC 1071 §4.1), in Python."""
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    return s


def ways(size: int) -> list[tuple[str, Callable[[bytes], int], int]]:
    """(name, function of the data, factor) for data of ``size`` bytes, ``size`` even (an
    odd length is summed with a zero byte after it, RFC 1071 §4.1: see ``padded``): each
    function returns a number congruent (mod 0xFFFF) to ``factor`` times the data's word
    sum -- 256 for the ways that read native little-endian words (a byte-swapped word w is
    256·w mod 0xFFFF; reduced_sum swaps back itself)."""
    if size & 1:
        raise ValueError("ways() sums whole words: pad the data first (padded)")
    plan = fold_plan(size)
    unpack = struct.Struct(f"!{size // 2}H").unpack
    native = 256 if sys.byteorder == "little" else 1
    return [
        ("int.from_bytes alone (the conversion)", lambda d: _from_bytes(d, "big"), 1),
        ("int.from_bytes, % 0xFFFF", lambda d: _from_bytes(d, "big") % 0xFFFF, 1),
        ("reduced_sum (two halves, folded)", lambda d: reduced_sum(d), 1),
        ("reduced_sum with a fold plan", lambda d: reduced_sum(d, plan), 1),
        ("sum(struct.unpack('!...H'))", lambda d: sum(unpack(d)), 1),
        ("sum(array('H'))", lambda d: sum(array.array("H", d)), native),
        ("sum(memoryview.cast('H'))", lambda d: sum(memoryview(d).cast("H")), native),
        ("a Python loop over the words", _words_loop, 1),
    ]


def padded(data: bytes) -> bytes:
    """``data`` with a zero byte after an odd length (RFC 1071 §4.1): the same sum."""
    return data + b"\0" if len(data) & 1 else data


def agrees(fn: Callable[[bytes], int], factor: int, data: bytes) -> bool:
    """Whether ``fn`` sums ``data`` as RFC 1071 does: its value, brought back from
    ``factor`` times the word sum (256 * 256 == 1 mod 0xFFFF), gives the same checksum."""
    v = fn(data) % 0xFFFF
    if factor == 256:
        v = (v * 256) % 0xFFFF
    return 0xFFFF - (v or (0xFFFF if any(data) else 0)) == internet_checksum(data)


def tcp_frame(payload: bytes, seq: int = 1000) -> bytes:
    """Ethernet + IPv4 + TCP (timestamps) around ``payload``, flags ACK only (a run GRO may
    merge; the checksums are the cut's business or the test's)."""
    eth = bytes(12) + b"\x08\x00"
    tcp = struct.pack("!HHIIBBHHH", 19, 40000, seq, 2000, 8 << 4, 0x10, 500, 0, 0) + b"\x01\x01\x08\x0a" + bytes(8)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, (20 + len(tcp) + len(payload)) & 0xFFFF, 1, 0x4000, 64, 6, 0,
                     bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1]))
    return eth + ip + tcp + payload


def best_us(fn: Callable[[], object], items: int, repeat: int) -> float:
    """The best of ``repeat`` timings of ``fn``, in µs per item (``fn`` handles ``items``)."""
    number = 1
    while timeit.timeit(fn, number=number) < 0.05:
        number *= 2
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number / items * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1448, help="bytes summed (default: one MSS)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if args.size < 2:
        ap.error("--size must be at least 2")
    rng = random.Random(1)
    data = padded(rng.randbytes(args.size))
    size = len(data)
    print(f"Summing {args.size} bytes (RFC 1071) in {platform.python_implementation()} "
          f"{platform.python_version()}; best of {args.repeat}:")
    rows: list[tuple[str, float | None]] = []
    for name, fn, factor in ways(size):
        samples = [data] + [padded(rng.randbytes(args.size)) for _ in range(20)]
        ok = all(agrees(fn, factor, sample) for sample in samples)
        rows.append((name, best_us(partial(fn, data), 1, args.repeat) if ok else None))
    floor = rows[0][1] or 1.0      # int.from_bytes alone: what every fast way does first
    for name, us in rows:
        if us is None:
            print(f"  {name:42s}  sums wrongly: not timed")
        else:
            print(f"  {name:42s} {us:8.3f} µs  {us / floor:6.1f}x")
    copy = best_us(partial(bytes, memoryview(data)), 1, args.repeat)
    print(f"  (for scale: copying the {size} bytes once takes {copy:.3f} µs)")
    # The offloads' per-frame work, on MSS-sized pieces of 1448 bytes.
    mss = 1448
    cut = Offload(1500)
    sup = tcp_frame(rng.randbytes(44 * mss))
    pieces = cut.segment(sup)
    run = pieces[:40]
    print("Per frame of 1448 bytes, wirestack's software offloads (sim/offload.py):")
    print(f"  {'TSO/GSO: cut + IP and TCP checksums':42s} {best_us(lambda: cut.segment(sup), len(pieces), args.repeat):8.3f} µs")
    print(f"  {'GRO: check both checksums + merge':42s} {best_us(lambda: cut.coalesce(run), len(run), args.repeat):8.3f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
