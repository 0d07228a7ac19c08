"""What the benchmark scripts (bench/) set up in the namespaces they make, proved on Linux:
the figures they print are only as good as that set-up. (Their figures themselves are never
asserted: tests do not time anything.)"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))

import tap_bench  # noqa: E402

pytestmark = pytest.mark.interop

IP = "198.18.5.1"
PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def closing_server(ns) -> socket.socket:
    """A listener on IP:9 in ``ns`` that reads each connection to its end and then closes
    it, so that the client, which closes first, is the side left in TIME_WAIT."""
    with ns.enter():
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((IP, 9))
    ls.listen(16)

    def serve():
        while True:
            try:
                conn, _ = ls.accept()
            except OSError:
                return          # the listener was closed: the test is over
            with conn:
                while conn.recv(64):
                    pass
    threading.Thread(target=serve, daemon=True).start()
    return ls


def sockets(ns) -> str:
    """The namespace's TCP sockets, as a failure message shows them."""
    return ns.run(["ss", "-tan"]).stdout


def time_waits(ns) -> list[str]:
    return ns.run(["ss", "-Htan", "state", "time-wait"]).stdout.splitlines()


def wait_for_time_waits(ns, n: int) -> None:
    """Wait until the client's N ports are all in TIME_WAIT: each is, once the server's
    thread has read the client's FIN and closed its side, which it does in its own time."""
    deadline = time.monotonic() + 5
    while len(time_waits(ns)) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"{n} TIME_WAIT sockets expected; sockets:\n{sockets(ns)}")
        time.sleep(0.01)


def test_bench_clients_reuse_ports_whose_time_wait_is_over_a_second_old(netns):
    # The address is not a loopback one, so Linux's default (tcp_tw_reuse=2) keeps a
    # TIME_WAIT port from connect(), as on the bench's TAP paths; four ephemeral ports make
    # the range run out after four connections instead of 28,000.
    ns = netns("twr")
    ns.ip("addr", "add", f"{IP}/32", "dev", "lo")
    ns.ip("link", "set", "lo", "up")
    with ns.enter(), open(PORT_RANGE, "w") as f:
        f.write("40000 40003")
    with ns.enter(), open(PORT_RANGE) as f:
        assert f.read().split() == ["40000", "40003"]
    ls = closing_server(ns)
    try:
        assert len(tap_bench.connects(ns.name, IP, 4)) == 4
        wait_for_time_waits(ns, 4)
        fifth = tap_bench.sock_in(ns.name)
        with fifth, pytest.raises(OSError) as no_port:
            fifth.connect((IP, 9))
            pytest.fail(f"a fifth connect took port {fifth.getsockname()[1]}; sockets:\n{sockets(ns)}")
        assert no_port.value.errno == errno.EADDRNOTAVAIL

        tap_bench.reuse_time_wait(ns.name)
        time.sleep(1.1)         # a TIME_WAIT is reused once a second has passed since it began
        assert len(tap_bench.connects(ns.name, IP, 4)) == 4
        assert 0 < len(time_waits(ns)) <= 4     # the same four ports, each in TIME_WAIT again
    finally:
        ls.close()
