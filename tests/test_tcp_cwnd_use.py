"""cwnd while the sender does not use it: no growth, and a restart after idle.

- cwnd grows only while the sender fills it (RFC 9438 §5.8; TcpConfig.cwnd_validation). A
  sender held back by its application (request/response) or by the peer's window is not
  testing the path: ACKs of its data say nothing about a larger window. Without the check
  cwnd grows on every one of them, and the first large write after such a phase leaves as
  one burst of that size.
- After more than an RTO without sending data, cwnd restarts from the initial window
  (RFC 5681 §4.1; TcpConfig.slow_start_after_idle): the ACK clock has stopped, and what
  cwnd learned of the path may no longer hold."""

import hashlib

import pytest

from tcp_harness import Wire, connect_pair, pump
from wirestack.tcp import TcpConfig
from wirestack.tcp.congestion import Cubic
from wirestack.tcp.congestion.base import initial_window
from wirestack.units import MS, SEC

MSS = 1448   # the harness's MTU 1500 less 40 bytes of headers and 12 of timestamps


def exchange(wire, c, s, rounds: int, size: int = 64) -> None:
    """``rounds`` request/response round trips of ``size`` bytes each way, c asking."""
    for i in range(rounds):
        c.send(bytes([i & 0xFF]) * size)
        wire.run_until(lambda: s.readable >= size, timeout=10 * SEC)
        s.send(s.recv(size))
        wire.run_until(lambda: c.readable >= size, timeout=10 * SEC)
        assert c.recv(size) == bytes([i & 0xFF]) * size
    wire.run()      # until quiet: the delayed ACK of the last answer arrives too


def rr_pair(validation: bool, cc: str = "newreno", **options):
    wire = Wire(delay=1 * MS)
    cfg = TcpConfig(cwnd_validation=validation, nodelay=True, congestion_control=cc, **options)
    a, b = wire.pair(cfg)
    c, s, _ = connect_pair(wire, a, b)
    return wire, c, s


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_request_response_leaves_cwnd_at_the_initial_window(cc):
    wire, c, s = rr_pair(True, cc)
    iw = s.stats()["cwnd"]
    exchange(wire, c, s, 300)
    assert s.stats()["cwnd"] == iw and c.stats()["cwnd"] == iw
    # The switch off: every 64-byte answer's ACK grew it (slow start: by the bytes acked).
    wire, c, s = rr_pair(False, cc)
    exchange(wire, c, s, 300)
    assert s.stats()["cwnd"] == iw + 300 * 64


def first_flight(wire, sender, receiver, size: int) -> int:
    """Write ``size`` bytes at once; the data segments that leave before the first ACK
    can come back (one round trip of the harness's 1 ms each way) -- the burst."""
    t0 = wire.now
    mark = len(wire.trace)
    data = bytes(range(256)) * (size // 256)
    got = pump(wire, sender, receiver, data, close=False)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    src = wire.trace[mark].src
    return sum(1 for x in wire.trace[mark:] if x.src == src and x.data and x.t < t0 + 2 * MS)


def test_no_burst_after_an_application_limited_phase():
    wire, c, s = rr_pair(True)
    iw = s.stats()["cwnd"]
    exchange(wire, c, s, 300)
    assert first_flight(wire, s, c, 200 * 1024) == iw // MSS      # the initial window
    wire, c, s = rr_pair(False)
    exchange(wire, c, s, 300)
    # 300 * 64 bytes of growth that no ACK of a full window ever vouched for, sent at once.
    assert first_flight(wire, s, c, 200 * 1024) == (iw + 300 * 64) // MSS


def test_a_sender_that_fills_cwnd_grows_it_as_before():
    grown = []
    for validation in (True, False):
        wire, c, s = rr_pair(validation)
        iw = s.stats()["cwnd"]
        pump(wire, s, c, bytes(40 * MSS), close=False)
        grown.append(s.stats()["cwnd"])
    # Slow start, one SMSS per ACK (RFC 3465 L = 1), with or without the check.
    assert grown[0] == grown[1] > 4 * iw


@pytest.mark.parametrize("validation", [True, False])
def test_a_receiver_limited_sender_stops_growing_cwnd_at_twice_its_flight(validation):
    wire = Wire(delay=1 * MS)
    a, b = wire.pair(TcpConfig(cwnd_validation=validation), TcpConfig(rcvbuf=8192))
    c, s, _ = connect_pair(wire, a, b)
    data = bytes(range(256)) * 4096          # 1 MiB through a window of 8 KiB
    got = pump(wire, c, s, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    cwnd = c.stats()["cwnd"]
    if validation:
        # In slow start cwnd may reach twice the most that was in flight (the window).
        assert cwnd <= 2 * 8192 + MSS
    else:
        assert cwnd > 50 * 8192        # grown by nearly every byte acknowledged


def cubic_in_avoidance() -> Cubic:
    """A CUBIC controller after a loss at 100 segments, its congestion avoidance stage
    begun at time 0 (W_max 100, cwnd 70 segments)."""
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_loss_sack(100 * MSS, 0)
    cc.on_ack(MSS, 0, 10 * MS, 70 * MSS)       # the stage's epoch starts at 0
    return cc


def cubic_flow_in_avoidance():
    """A CUBIC connection put in congestion avoidance from the start, then 40 segments from
    the server: its stage has an epoch. (wire, client, server, the server's controller)"""
    wire, c, s = rr_pair(True, "cubic")
    cc = s._conn.cc
    cc.ssthresh = cc.cwnd
    pump(wire, s, c, bytes(40 * MSS), close=False)
    return wire, c, s, cc


def test_cubic_curve_resumes_where_it_paused():
    """RFC 9438 §5.8: the time a flow did not use its window is not part of t."""
    steady, paused, unshifted = cubic_in_avoidance(), cubic_in_avoidance(), cubic_in_avoidance()
    steady.on_ack(MSS, 1 * SEC, 10 * MS, 70 * MSS)
    paused.on_growth_resumed(30 * SEC)
    paused.on_ack(MSS, 31 * SEC, 10 * MS, 70 * MSS)
    unshifted.on_ack(MSS, 31 * SEC, 10 * MS, 70 * MSS)
    assert paused.cwnd == steady.cwnd
    assert unshifted.cwnd > steady.cwnd        # the curve ran on in the pause: a jump


def test_cubic_epoch_moves_on_by_the_time_its_window_went_unused():
    wire, c, s, cc = cubic_flow_in_avoidance()
    epoch = cc.epoch
    assert epoch is not None                   # the stage began with the first ACK
    start = wire.now
    exchange(wire, c, s, 200)                  # ~0.4 s of answers far below cwnd
    unused = wire.now - start
    cwnd = cc.cwnd
    pump(wire, s, c, bytes(40 * MSS), close=False)
    assert cc.cwnd > cwnd                      # growing again...
    # ... on a curve moved on by the pause (from the first ACK that left cwnd unused to
    # the first that grew it: within a few round trips of the exchange's length).
    assert unused - 20 * MS <= cc.epoch - epoch <= unused + 20 * MS


@pytest.mark.parametrize("idle, switch, restart", [
    (3 * SEC, True, True),           # longer than the RTO (1 s): from the initial window
    (300 * MS, True, False),         # shorter: the ACK clock is still good
    (3 * SEC, False, False),         # the switch off: the old window in one burst
])
def test_after_an_idle_rto_the_sender_restarts_from_the_initial_window(idle, switch, restart):
    wire, c, s = rr_pair(True, slow_start_after_idle=switch)
    iw = s.stats()["cwnd"]
    pump(wire, s, c, bytes(100 * MSS), close=False)
    assert s.stats()["cwnd"] > 10 * iw
    wire.run(duration=idle)                      # the sender sends nothing
    flight = first_flight(wire, s, c, 200 * 1024)
    if restart:
        assert flight == iw // MSS
        assert s._conn.counters["tcp.idle_restarts"] == 1
    else:
        assert flight > 10 * (iw // MSS)
        assert s._conn.counters["tcp.idle_restarts"] == 0


def test_cubic_restarts_its_curve_after_idle():
    cc = cubic_in_avoidance()
    assert cc.on_restart_after_idle()
    assert cc.cwnd == initial_window(MSS)
    assert cc.epoch is None                    # the next stage starts a curve of its own
    cc.cwnd = cc.ssthresh = 2 * MSS            # below the initial window, in avoidance
    cc.on_ack(MSS, 5 * SEC, 10 * MS, MSS)
    epoch = cc.epoch
    assert epoch == 5 * SEC
    assert not cc.on_restart_after_idle()      # nothing above the restart window to give up
    assert cc.epoch == epoch and cc.cwnd < initial_window(MSS)   # ... nor a curve to restart


def test_a_restart_remembers_the_window_it_gave_up_in_ssthresh():
    """RFC 2861 §3 (Linux's tcp_cwnd_restart): ssthresh = max(ssthresh, 3/4 cwnd), so slow
    start climbs back to most of the old window instead of stopping at an older, lower
    ssthresh and growing one segment per round trip from there."""
    from wirestack.tcp.congestion import get
    cc = get("newreno")(MSS)
    cc.cwnd, cc.ssthresh = 60 * MSS, 20 * MSS
    assert cc.on_restart_after_idle()
    assert cc.cwnd == initial_window(MSS) and cc.ssthresh == 45 * MSS
    cc.cwnd, cc.ssthresh = 40 * MSS, 50 * MSS
    assert cc.on_restart_after_idle() and cc.ssthresh == 50 * MSS     # already higher: kept


def test_cubic_clock_skips_a_pause_shorter_than_the_rto():
    """RFC 9438 §5.8 names idle periods too: a sender that filled its window, then paused for
    less than the RTO (no restart), resumes on a curve moved on by the pause."""
    wire, c, s, cc = cubic_flow_in_avoidance()
    end = wire.now                             # the last data left before this
    wire.run(duration=250 * MS)                # every ACK in (a delayed one too)
    epoch = cc.epoch
    assert epoch is not None and s._conn.snd_una == s._conn.snd_max
    wire.run(duration=500 * MS)                # in all below the RTO (1 s): no restart
    resume = wire.now
    pump(wire, s, c, bytes(10 * MSS), close=False)
    assert s._conn.counters["tcp.idle_restarts"] == 0
    # Moved on by the time since the last data left: the pause and the last round trip.
    assert resume - end <= cc.epoch - epoch <= resume - end + 20 * MS
