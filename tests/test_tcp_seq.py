"""Sequence-number arithmetic (RFC 9293 §3.4, RFC 1982 §3.2): wrap-around cases by hand,
then the properties for every pair of numbers hypothesis can find."""

from hypothesis import given
from hypothesis import strategies as st

from wirestack.tcp import seq

TOP = 0xFFFFFFFF
u32 = st.integers(0, TOP)
distance = st.integers(-(2**31) + 1, 2**31 - 1)          # distances that have a direction
unwrapped = st.integers(0, 2**40)                       # TCB values run past 2**32


# ---------------------------------------------------------------------- by hand
def test_constants():
    assert seq.MASK == 0xFFFFFFFF and seq.HALF == 0x80000000 and seq.MOD == 0x100000000


def test_add_wraps_past_the_top():
    assert seq.add(TOP, 1) == 0
    assert seq.add(0xFFFFFFF0, 0x20) == 0x10
    assert seq.add(5, -10) == TOP - 4
    assert seq.wrap(2**32 + 7) == 7
    assert seq.wrap(-1) == TOP


def test_sub_is_the_short_way_round():
    assert seq.sub(0x10, 0xFFFFFFF0) == 0x20        # forward across zero
    assert seq.sub(0xFFFFFFF0, 0x10) == -0x20       # backward across zero
    assert seq.sub(7, 7) == 0
    assert seq.sub(2**31 - 1, 0) == 2**31 - 1
    assert seq.sub(2**31 + 1, 0) == -(2**31 - 1)


def test_comparisons_across_zero():
    assert seq.lt(TOP, 0) and seq.le(TOP, 0)
    assert seq.gt(0, TOP) and seq.ge(0, TOP)
    assert not seq.lt(0, TOP) and not seq.gt(TOP, 0)
    assert seq.le(9, 9) and seq.ge(9, 9) and not seq.lt(9, 9) and not seq.gt(9, 9)


def test_antipodal_numbers_are_each_before_the_other():
    # Exactly 2**31 apart: no order (RFC 1982 §3.2); like Linux's before(), both are "before".
    assert seq.sub(2**31, 0) == seq.sub(0, 2**31) == -(2**31)
    assert seq.lt(0, 2**31) and seq.lt(2**31, 0)
    assert not seq.gt(0, 2**31) and not seq.gt(2**31, 0)


def test_unwrap_next_to_a_reference_past_the_first_wrap():
    ref = 2**32 - 10                                   # RCV.NXT just below the first wrap
    assert seq.unwrap(5, ref) == 2**32 + 5              # a segment just after the wrap
    assert seq.unwrap(TOP - 20, ref) == 2**32 - 21      # an old duplicate just before ref
    ref = 3 * 2**32 + 100                               # the fourth trip round the space
    assert seq.unwrap(50, ref) == 3 * 2**32 + 50
    assert seq.unwrap(TOP, ref) == 3 * 2**32 - 1
    assert seq.unwrap(0, 0) == 0 and seq.unwrap(TOP, 0) == -1


# ---------------------------------------------------------------------- properties
@given(u32, distance)
def test_sub_undoes_add(a, n):
    assert seq.sub(seq.add(a, n), a) == n


@given(u32, u32)
def test_add_undoes_sub(a, b):
    assert seq.add(b, seq.sub(a, b)) == a
    assert -(2**31) <= seq.sub(a, b) < 2**31


@given(unwrapped, distance)
def test_unwrap_recovers_values_within_half_the_space(ref, n):
    true = ref + n
    assert seq.unwrap(seq.wrap(true), ref) == true


@given(unwrapped, distance, distance)
def test_comparisons_agree_with_the_unwrapped_ints(ref, i, j):
    # Two numbers both near one reference, less than 2**31 apart: modular comparison of the
    # wire values must give the plain comparison of the true values.
    x, y = ref + i // 2, ref + j // 2
    a, b = seq.wrap(x), seq.wrap(y)
    assert seq.lt(a, b) == (x < y)
    assert seq.le(a, b) == (x <= y)
    assert seq.gt(a, b) == (x > y)
    assert seq.ge(a, b) == (x >= y)
    assert seq.sub(a, b) == x - y


@given(u32, u32)
def test_exactly_one_order_unless_antipodal(a, b):
    if seq.sub(a, b) == -(2**31):
        return                                          # see the antipodal test above
    assert [seq.lt(a, b), a == b, seq.gt(a, b)].count(True) == 1
    assert seq.lt(a, b) == seq.gt(b, a)
    assert seq.le(a, b) == (not seq.gt(a, b))
    assert seq.ge(a, b) == (not seq.lt(a, b))


@given(st.binary(min_size=1, max_size=32), st.binary(min_size=4, max_size=4),
       st.integers(1, 65535), st.binary(min_size=4, max_size=4), st.integers(1, 65535),
       st.integers(0, 2**62))
def test_prepared_isn_generator_gives_the_rfc6528_numbers(secret, lip, lport, rip, rport, now):
    from wirestack.tcp.isn import IsnGenerator, isn
    assert IsnGenerator(secret)(lip, lport, rip, rport, now) == isn(secret, lip, lport, rip, rport, now)
