"""The virtual-time event loop."""

from wirestack.sim import Scheduler
from wirestack.units import MS, SEC


def test_events_run_in_time_order_and_fifo_among_equal_times():
    s = Scheduler()
    out = []
    s.call_at(5, out.append, "c")
    s.call_at(1, out.append, "a")
    s.call_at(5, out.append, "d")   # same time as "c", scheduled later -> runs after it
    s.call_at(3, out.append, "b")
    s.run()
    assert out == ["a", "b", "c", "d"]
    assert s.now == 5


def test_call_later_is_relative_to_now_and_callbacks_see_their_time():
    s = Scheduler()
    seen = []

    def tick(n):
        seen.append(s.now)
        if n:
            s.call_later(10 * MS, tick, n - 1)

    s.call_later(1 * SEC, tick, 3)
    s.run()
    assert seen == [1 * SEC, 1 * SEC + 10 * MS, 1 * SEC + 20 * MS, 1 * SEC + 30 * MS]


def test_cancel_prevents_the_call_and_next_time_skips_it():
    s = Scheduler()
    out = []
    h = s.call_at(10, out.append, 1)
    s.call_at(20, out.append, 2)
    h.cancel()
    assert h.cancelled
    assert s.next_time() == 20
    s.run()
    assert out == [2]


def test_run_until_runs_due_events_only_and_sets_now():
    s = Scheduler()
    out = []
    s.call_at(100, out.append, 100)
    s.call_at(200, out.append, 200)
    s.call_at(201, out.append, 201)
    assert s.run_until(200) == 2
    assert out == [100, 200] and s.now == 200
    s.run_until(150)                   # never goes back
    assert s.now == 200
    s.run_until(1000)
    assert out == [100, 200, 201] and s.now == 1000
    assert s.next_time() is None


def test_run_with_until_and_max_events_and_step():
    s = Scheduler()
    out = []
    for t in range(1, 11):
        s.call_at(t, out.append, t)
    assert s.run(max_events=3) == 3
    assert out == [1, 2, 3] and s.now == 3
    assert s.step() is True and out[-1] == 4
    assert s.run(until=7) == 3 and s.now == 7
    s.run(until=100)
    assert out == list(range(1, 11)) and s.now == 100
    assert s.step() is False


def test_past_deadline_is_clamped_to_now():
    s = Scheduler()
    s.run_until(50)
    h = s.call_at(10, lambda: None)
    assert h.when == 50
    s.run()
    assert s.now == 50


def test_schedulers_are_independent():
    a, b = Scheduler(), Scheduler()
    a.call_at(5, lambda: None)
    a.run()
    assert a.now == 5 and b.now == 0 and b.next_time() is None
