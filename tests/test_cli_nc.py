"""`wirestack nc` behaves like netcat: it reads and writes at the same time (any size, no
deadlock), connects before stdin ends (interactive use), honours HOST PORT and -l in the
simulation, and says what happened when a connection cannot be made."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wirestack.cli.common import CommandError
from wirestack.cli.realnet import connect
from wirestack.runtime.sim import Network
from wirestack.sim import Fault

WIRESTACK = [sys.executable, "-m", "wirestack"]
REPO = Path(__file__).resolve().parent.parent


def test_20_megabytes_through_a_lossy_wire_come_back_intact():
    """More than both directions' buffers: the old nc wrote everything before reading and
    deadlocked from about 2 MB. Fed through a pipe by a producer that is sometimes slower
    than nc, as `head -c 20000000 /dev/urandom | wirestack nc --loss 0.05` is."""
    data = os.urandom(20_000_000)
    proc = subprocess.Popen(WIRESTACK + ["nc", "--loss", "0.05"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def produce():
        for off in range(0, len(data), 1 << 20):
            proc.stdin.write(data[off:off + (1 << 20)])
            proc.stdin.flush()
            if off % (4 << 20) == 0:
                time.sleep(0.1)          # a pause: nc must not mistake it for the end
        proc.stdin.close()

    errors: list[bytes] = []
    producer = threading.Thread(target=produce)
    drain_err = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    producer.start()
    drain_err.start()
    out = proc.stdout.read()          # concurrently with the producer, as a shell pipe does
    producer.join(timeout=300)
    drain_err.join(timeout=300)
    proc.wait(timeout=60)
    err = errors[0]
    assert proc.returncode == 0, err.decode()
    assert hashlib.sha256(out).hexdigest() == hashlib.sha256(data).hexdigest()
    assert b"20000000 bytes sent, 20000000 received" in err
    assert b"Task was destroyed" not in err


def test_interactive_nc_answers_each_line_before_stdin_ends():
    proc = subprocess.Popen(WIRESTACK + ["nc", "--loss", "0.1", "--seed", "4"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in (b"hello\n", b"lossy world\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            assert proc.stdout.readline() == line        # echoed while stdin is still open
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_host_port_picks_the_peer_service_http_on_80():
    request = b"GET /README.md HTTP/1.0\r\n\r\n"
    proc = subprocess.run(WIRESTACK + ["nc", "198.18.0.2", "80"], input=request, capture_output=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    assert body == (REPO / "README.md").read_bytes()


def test_discard_on_9_takes_everything_and_answers_nothing():
    proc = subprocess.run(WIRESTACK + ["nc", "198.18.0.2", "9"], input=b"x" * 100_000,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"100000 bytes sent, 0 received" in proc.stderr


def test_listen_in_the_simulation_peer_connects_and_echoes():
    proc = subprocess.run(WIRESTACK + ["nc", "-l", "5000", "--loss", "0.05"], input=b"ping me\n" * 1000,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"ping me\n" * 1000
    assert b"Listening on 198.18.0.1 5000" in proc.stderr


def test_connect_timeout_says_what_timed_out():
    """A host that answers ARP but never a SYN (a firewall that drops): nc's and curl's words."""
    from wirestack.wire import parse_frame

    def is_syn(frame):
        f = parse_frame(frame) if isinstance(frame, (bytes, bytearray, memoryview)) else frame
        return f.tcp is not None and f.tcp.syn

    with Network(seed=1) as net:
        a = net.host("a", "198.18.0.1/24")
        b = net.host("b", "198.18.0.2/24")
        link = net.link(a, b)
        link.add_fault(Fault("drop", match=is_syn))

        async def main():
            await b.start_server(lambda r, w: None, 80)
            with pytest.raises(CommandError) as exc:
                await connect(a, "198.18.0.2", 80, timeout=5)
            return str(exc.value), exc.value.status

        message, status = net.run(main())
    assert (message, status) == ("connect to 198.18.0.2 port 80 (tcp) timed out", 1)


def test_connect_to_an_address_nobody_has_says_no_route_to_host():
    with Network(seed=1) as net:
        a = net.host("a", "198.18.0.1/24")
        net.link(a, net.host("b", "198.18.0.2/24"))

        async def main():
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(CommandError) as exc:
                await connect(a, "198.18.0.77", 80, timeout=30)
            return str(exc.value), asyncio.get_running_loop().time() - t0

        message, took = net.run(main())
    # As soon as ARP gives up (3 tries, 1 s apart), not at the 30 s timeout.
    assert message == "connect to 198.18.0.77 port 80 (tcp) failed: No route to host"
    assert took < 5


@pytest.mark.interop
@pytest.mark.parametrize("cmd", [["nc", "198.18.7.77", "80"], ["get", "http://198.18.7.77/"]])
def test_tap_connect_to_an_address_nobody_has(netns, cmd):
    """Over a real TAP device: ARP for 198.18.7.77 goes unanswered, and the command says so
    as nc and curl do, in one line, status 1, having removed its TAP device."""
    ns = netns("ncnoroute")
    proc = subprocess.run(WIRESTACK + cmd + ["--tap", "wsnr0", "--netns", ns.name, "--ip", "198.18.7.2/24",
                                             "--peer-ip", "198.18.7.1/24", "-w", "20"],
                          input=b"", capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.decode() == (f"wirestack {cmd[0]}: error: connect to 198.18.7.77 port 80 (tcp) "
                                    "failed: No route to host\n")
    links = subprocess.run(["ip", "-n", ns.name, "-o", "link"], capture_output=True, text=True).stdout
    assert "wsnr0" not in links


def test_udp_loses_what_the_wire_loses_and_says_so():
    # 16-byte records: stdin is read in multiples of 16 and a datagram carries 1472 = 92 x 16
    # bytes, so every datagram holds whole records.
    data = b"".join(b"%015d\n" % i for i in range(20000))
    proc = subprocess.run(WIRESTACK + ["nc", "-u", "--loss", "0.1"], input=data, capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [proc.stdout[i:i + 16] for i in range(0, len(proc.stdout), 16)]
    numbers = [int(r) for r in records]
    assert numbers == sorted(set(numbers))                  # whole, in order, no duplicates here
    assert 0 < len(numbers) < 20000                         # some lost: nobody retransmits
    m = re.search(rb"(\d+) datagrams \((\d+) bytes\) sent, (\d+) \((\d+) bytes\) came back", proc.stderr)
    assert int(m.group(2)) == len(data) and int(m.group(4)) == len(proc.stdout)
    assert int(m.group(3)) < int(m.group(1))


def test_udp_to_a_closed_port_is_refused():
    proc = subprocess.run(WIRESTACK + ["nc", "-u", "198.18.0.2", "9"], input=b"anyone?\n",
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == (b"wirestack nc: error: 198.18.0.2 port 9 (udp): Connection refused "
                           b"(the host answered with ICMP port unreachable)\n")


UDP_ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7008)); print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, addr)
"""


@pytest.mark.interop
def test_udp_over_tap_through_a_linux_echo_socket(netns):
    ns = netns("ncudp")
    server = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", UDP_ECHO],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        data = b"".join(b"line %d\n" % i for i in range(300))
        proc = subprocess.run(WIRESTACK + ["nc", "-u", "--tap", "wsnu0", "--netns", ns.name,
                                           "--ip", "198.18.4.2/24", "--peer-ip", "198.18.4.1/24",
                                           "198.18.4.1", "7008"],
                              input=data, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout == data          # no loss on a TAP inside one machine
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("argv", [["nc"], ["iperf3", "-c", "198.18.0.2", "-t", "100000"]])
def test_ctrl_c_ends_a_simulated_command_quietly_with_status_130(argv):
    import signal
    proc = subprocess.Popen(WIRESTACK + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        if argv[0] == "nc":
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == b"hello\n"      # connected, waiting for more
        else:
            assert proc.stdout.readline().startswith(b"Connecting to host")
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)                 # stdin still open: Ctrl-C alone ends it
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err == b""


def test_simulated_trace_marks_the_frames_the_wire_lost():
    proc = subprocess.run(WIRESTACK + ["nc", "--loss", "0.2", "--seed", "5", "--trace"], input=b"x" * 30000,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == b"x" * 30000
    lines = proc.stderr.decode().splitlines()
    frames = [line for line in lines if re.match(r"^#\d+ +\d+\.\d{6} ", line)]
    assert [int(line[1:].split()[0]) for line in frames] == list(range(1, len(frames) + 1))
    lost = sum(line.endswith("[LOST on the wire]") for line in frames)
    assert lost > 0 and f", {lost} frames lost on the wire" in lines[-1]
