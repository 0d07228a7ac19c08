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


def test_a_kick_during_transmit_costs_no_extra_service_in_real_time_only():
    """An application callback that writes from inside the host's poll kicks the driver while
    transmit() runs: in real time that transmit already sends it (one service, no second
    loop turn); what is still due afterwards is in poll_at(), which arms the timer. Virtual
    time keeps scheduling the service, so simulated runs keep their order of events."""
    for exact, services in ((False, 1), (True, 2)):
        sched, host, sent, timers, driver = make(exact=exact, soonest=1)
        real_transmit = host.transmit

        def transmit(now, real_transmit=real_transmit, driver=driver, host=host):
            if len(host.transmits) == 0:
                host.out.append((0, b"reply"))   # written by a callback inside the poll...
                driver.kick()                    # ...which asks for a service
            return real_transmit(now)

        host.transmit = transmit
        driver.kick()
        sched.run()
        assert sent[0] == [b"reply"]
        assert len(host.transmits) == services, (exact, host.transmits)

    # What the running transmit did not send is not lost: poll_at says it is due.
    sched, host, sent, timers, driver = make(exact=False, soonest=5)
    late = []

    def transmit(now):
        host.transmits.append(now)
        if len(host.transmits) == 1:
            driver.kick()
            late.append(b"late")                 # queued where this transmit cannot see it
            host.deadline = now                  # ... so the host reports it as due
            return []
        host.deadline = None
        out = [(0, f) for f in late]
        late.clear()
        return out

    host.transmit = transmit
    driver.kick()
    sched.run()
    assert sent[0] == [b"late"] and host.transmits == [0, 5] and timers == [5]
