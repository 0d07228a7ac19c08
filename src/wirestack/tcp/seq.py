"""Sequence-number arithmetic, RFC 9293 §3.4: 32-bit numbers that wrap around.

A sequence number on the wire is an integer modulo 2**32. Two of them are compared by
their *signed distance*: ``a`` is before ``b`` when going forward from ``a`` reaches
``b`` in fewer than 2**31 steps (RFC 1982 §3.2, "serial number arithmetic"). Everything
here is that one idea:

* ``wrap(n)``      any int -> the 32-bit number on the wire (``n & MASK``);
* ``add(a, n)``    ``a + n`` on the wire (a sequence number plus a length);
* ``sub(a, b)``    the signed distance from ``b`` to ``a``, in ``[-2**31, 2**31)``;
* ``lt le gt ge``  comparisons: ``sub(a, b)`` against 0;
* ``unwrap(n, ref)`` the plain int nearest to ``ref`` whose low 32 bits are ``n``.

The engine keeps the TCB's numbers *unwrapped* (plain ints that never wrap, so it can
compare with ``<``) and uses ``unwrap`` on what arrives and ``wrap`` on what it sends.
For numbers within 2**31 of the reference that mapping is exact; a valid segment is
always that close (the window is at most 2**30, RFC 7323 §2.3).

Two numbers exactly 2**31 apart have no order (RFC 1982 §3.2 leaves it undefined). Here
``sub`` gives -2**31 for them, so each is "before" the other, as in Linux's ``before()``;
callers only meet that case with a forged or stale number, which every check rejects.
"""

from __future__ import annotations

MOD = 1 << 32       # the sequence space: 2**32 numbers
HALF = 1 << 31      # the largest distance that still has a direction
MASK = MOD - 1      # 0xFFFFFFFF: the low 32 bits


def wrap(n: int) -> int:
    """The 32-bit sequence number of an unwrapped int (what goes on the wire)."""
    return n & MASK


def add(a: int, n: int) -> int:
    """``a + n`` modulo 2**32: the number ``n`` octets after ``a`` (``n`` may be negative)."""
    return (a + n) & MASK


def sub(a: int, b: int) -> int:
    """The signed distance from ``b`` to ``a``: negative when ``a`` is before ``b``.
    ``add(b, sub(a, b)) == wrap(a)``."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def lt(a: int, b: int) -> bool:
    """``a`` is before ``b`` (RFC 9293 §3.4: "a < b")."""
    return (a - b) & MASK >= HALF


def le(a: int, b: int) -> bool:
    """``a`` is ``b`` or before it."""
    d = (a - b) & MASK
    return d == 0 or d >= HALF


def gt(a: int, b: int) -> bool:
    """``a`` is after ``b``."""
    d = (a - b) & MASK
    return 0 < d < HALF


def ge(a: int, b: int) -> bool:
    """``a`` is ``b`` or after it."""
    return (a - b) & MASK < HALF


def unwrap(n: int, ref: int) -> int:
    """The plain int nearest to ``ref`` whose low 32 bits are ``n``: a 32-bit number from
    a segment placed next to an unwrapped TCB variable (SEG.SEQ next to RCV.NXT, SEG.ACK
    next to SND.UNA). Exact when the true value is within 2**31 of ``ref``."""
    d = (n - ref) & MASK
    return ref + (d - MOD if d >= HALF else d)
