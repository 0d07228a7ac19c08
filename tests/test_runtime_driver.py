"""The one driver loop both runtimes use (runtime/driver.py): frames go to their interface's
device, one timer is armed for the host's next deadline, never re-armed needlessly, and a
deadline already due never makes the loop spin."""

from wirestack.runtime.driver import Driver
from wirestack.sim import Scheduler


class FakeHost:
    """Hands out queued frames and reports a deadline; counts how often it was asked."""

    def __init__(self):
        self.out: list[tuple[int, bytes]] = []
        self.deadline: int | None = None
        self.transmits: list[int] = []

    def transmit(self, now):
        self.transmits.append(now)
        out, self.out = self.out, []
        return out

    def poll_at(self):
        return self.deadline


def make(exact: bool, soonest: int):
    sched = Scheduler()
    host = FakeHost()
    sent: list[list[bytes]] = [[], []]
    timers: list[int] = []

    def call_at(t, fn):
        timers.append(t)
        return sched.call_at(t, fn)

    driver = Driver(host, sched.time, [sent[0].append, sent[1].append], sched.call_soon,
                    call_at, soonest=soonest, exact=exact)
    return sched, host, sent, timers, driver


def test_frames_go_to_their_interfaces_device_and_kicks_coalesce():
    sched, host, sent, timers, driver = make(exact=True, soonest=1)
    host.out = [(1, b"b"), (0, b"a")]
    driver.kick()
    driver.kick()
    sched.run()
    assert sent == [[b"a"], [b"b"]] and host.transmits == [0] and timers == []


def test_virtual_time_timer_follows_the_deadline_exactly():
    sched, host, sent, timers, driver = make(exact=True, soonest=1)
    host.deadline = 500
    driver.service()
    driver.service()                 # same deadline: not re-armed
    host.deadline = 800
    driver.service()                 # moved: re-armed at exactly the new one
    host.deadline = None
    sched.run()
    assert timers == [500, 800] and host.transmits == [0, 0, 0, 800]


def test_real_time_keeps_a_timer_that_fires_early():
    sched, host, sent, timers, driver = make(exact=False, soonest=1000)
    host.deadline = 5000
    driver.service()
    host.deadline = 9000             # later: the armed timer is kept
    driver.service()
    host.deadline = 3000             # sooner: re-armed
    driver.service()
    assert timers == [5000, 3000]


def test_a_deadline_already_due_is_served_later_never_in_a_spin():
    sched, host, sent, timers, driver = make(exact=True, soonest=1)
    sched.run_until(100)
    host.deadline = 50               # in the past
    driver.service()
    host.deadline = None
    sched.run()
    assert timers == [101] and host.transmits == [100, 101]


def test_stop_cancels_the_timer_and_ignores_queued_kicks():
    sched, host, sent, timers, driver = make(exact=False, soonest=1000)
    host.deadline = 5000
    driver.service()
    driver.kick()
    driver.stop()
    sched.run()
    assert host.transmits == [0]
