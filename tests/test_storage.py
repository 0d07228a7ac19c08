"""storage/: the byte FIFO, the out-of-order assembler, the bounded queue."""

import random

import pytest

from wirestack.storage import Assembler, BoundedQueue, ByteFifo


def test_fifo_bounded_append_and_read():
    f = ByteFifo(10)
    assert f.append(b"abcdef") == 6
    assert f.append(b"ghijkl") == 4     # only what fits
    assert len(f) == 10 and f.free == 0
    assert f.append(b"x") == 0
    assert f.read(3) == b"abc"
    assert bytes(f.peek(0, 2)) == b"de"
    assert bytes(f.peek(5, 10)) == b"ij"
    f.consume(2)
    assert f.read(100) == b"fghij"
    assert not f and len(f) == 0


def test_fifo_compacts_without_losing_bytes():
    f = ByteFifo(1 << 20)
    rng = random.Random(3)
    ref = bytearray()
    for _ in range(2000):
        chunk = rng.randbytes(rng.randrange(1, 3000))
        n = f.append(chunk)
        ref += chunk[:n]
        k = rng.randrange(0, 4000)
        got = f.read(k)
        assert got == bytes(ref[:len(got)])
        del ref[:len(got)]
        assert len(f) == len(ref)
    # storage never grows far beyond capacity: consumed prefix is cut off
    assert len(f._buf) <= 2 * (1 << 20)


def test_assembler_merges_and_pops_in_order():
    a = Assembler(max_bytes=1000)
    assert a.insert(110, b"K" * 10)       # [110,120)
    assert a.insert(130, b"M" * 10)       # [130,140)
    assert a.ranges() == [(110, 120), (130, 140)]
    assert a.insert(115, b"K" * 5 + b"L" * 10)   # bridges [115,130) -> one range
    assert a.ranges() == [(110, 140)]
    assert a.pop(100) is None             # gap before 110
    data = a.pop(110)
    assert bytes(data) == b"K" * 10 + b"L" * 10 + b"M" * 10
    assert not a and a.nbytes == 0


def test_assembler_overlap_trims_at_pop_and_discards_old():
    a = Assembler(max_bytes=1000)
    a.insert(10, b"abcdefghij")
    assert bytes(a.pop(15)) == b"fghij"
    a.insert(10, b"xx")
    assert a.pop(50) is None and not a    # wholly old: discarded


def test_assembler_tail_extension_in_place():
    a = Assembler(max_bytes=10**6)
    a.insert(1000, b"a" * 100)
    for i in range(1, 50):
        a.insert(1000 + 100 * i, b"a" * 100)
    assert a.ranges() == [(1000, 6000)]
    assert a.nbytes == 5000


def test_assembler_bounds():
    a = Assembler(max_bytes=100, max_ranges=2)
    assert a.insert(0, b"x" * 10)
    assert a.insert(20, b"x" * 10)
    assert not a.insert(40, b"x" * 10)    # a third island
    assert a.insert(10, b"y" * 10)        # merging is fine
    assert not a.insert(30, b"z" * 100)   # would exceed max_bytes
    assert a.ranges() == [(0, 30)]


def test_assembler_random_against_model():
    rng = random.Random(7)
    stream = rng.randbytes(5000)
    a = Assembler(max_bytes=10**6, max_ranges=10**6)
    pos = 0
    out = bytearray()
    pieces = [(i, stream[i:i + 100]) for i in range(0, 5000, 100)]
    pieces += [(i + 50, stream[i + 50:i + 170]) for i in range(0, 4800, 300)]
    rng.shuffle(pieces)
    for start, data in pieces:
        if start + len(data) <= pos:
            continue
        if start <= pos:
            out += data[pos - start:]
            pos = start + len(data)
            while (chunk := a.pop(pos)) is not None:
                out += chunk
                pos += len(chunk)
        else:
            assert a.insert(start, data)
    assert bytes(out) == stream


def test_assembler_sack_blocks_most_recent_first():
    a = Assembler(max_bytes=1000)
    a.insert(100, b"x" * 10)
    a.insert(200, b"x" * 10)
    a.insert(300, b"x" * 10)
    assert a.sack_blocks(3) == [(300, 310), (200, 210), (100, 110)]
    a.insert(210, b"y" * 5)
    assert a.sack_blocks(2) == [(200, 215), (300, 310)]


def test_bounded_queue():
    q = BoundedQueue(2)
    assert q.put(1) and q.put(2)
    assert not q.put(3) and q.full
    assert q.get() == 1 and q.get() == 2 and q.get() is None
    with pytest.raises(ValueError):
        BoundedQueue(-1)
