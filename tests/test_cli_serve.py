"""`wirestack serve` says what it runs and where, and what it removed when it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import interop_skip_reason

WIRESTACK = [sys.executable, "-m", "wirestack"]


@pytest.mark.interop
def test_serve_prints_services_addresses_counters_and_what_it_removed():
    reason = interop_skip_reason()
    if reason:
        pytest.skip(reason)
    ns = f"ws-serve-{os.getpid()}"          # serve creates it, so serve must delete it
    proc = subprocess.Popen(WIRESTACK + ["serve", "--netns", ns, "--tap", "wssv0", "--ip", "198.18.8.2",
                                         "--peer-ip", "198.18.8.1/24", "--echo", "7", "--udp-echo", "7",
                                         "--mac", "02:57:53:00:08:02"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = []
        while (line := proc.stdout.readline()) and line != "ready\n":
            head.append(line)
        # --ip had no prefix: it took /24 from --peer-ip.
        assert head[0] == (f"wirestack 198.18.8.2/24 (02:57:53:00:08:02) on TAP wssv0 in namespace {ns}, "
                           "kernel side 198.18.8.1/24\n")
        assert head[1:] == ["services:\n", "      7/tcp  echo (TCP)\n", "      7/udp  echo (UDP)\n"]
        ping = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "198.18.8.2"],
                              capture_output=True, text=True, timeout=10)
        assert ping.returncode == 0, ping.stdout
        proc.send_signal(signal.SIGUSR1)
        report = []
        while not (line := proc.stdout.readline()).startswith("counters "):
            report.append(line)
        assert "== counters of host wirestack\n" in report
        assert any(line.split() == ["1", "icmp.in_echos"] for line in report)
        assert any(line.split()[1:] == ["arp.out_gratuitous"] for line in report)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert rest == f"removed: TAP device wssv0, network namespace {ns}\n"
        assert not os.path.exists(f"/run/netns/{ns}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(f"/run/netns/{ns}"):
            subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.interop
def test_iperf3_server_tells_a_udp_client_it_does_tcp_only(netns):
    import shutil
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed")
    ns = netns("srvudp")
    proc = subprocess.Popen(WIRESTACK + ["serve", "--netns", ns.name, "--tap", "wsud0", "--ip", "198.18.8.2/24",
                                         "--peer-ip", "198.18.8.1/24", "--iperf3", "5201"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while (line := proc.stdout.readline()) and line != "ready\n":
            pass
        client = subprocess.run(["ip", "netns", "exec", ns.name, "iperf3", "-c", "198.18.8.2", "-u",
                                 "-t", "1"], capture_output=True, text=True, timeout=30)
        # The stock client can only print its own table's words for the error code...
        assert "not implemented" in client.stdout + client.stderr
        # ... and the server says which: UDP.
        line = proc.stdout.readline()
        assert "UDP (and SCTP) tests are not supported, only TCP" in line, line
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def traced_echo(ns, tap: str, flags: list[str], client: str) -> list[str]:
    """The frame lines `serve --trace` (and ``flags``) prints in ``ns`` while ``client``, a
    Python program run in the namespace, talks to its echo port 7 at 198.18.8.2."""
    proc = subprocess.Popen(WIRESTACK + ["serve", "--netns", ns.name, "--tap", tap, "--ip", "198.18.8.2/24",
                                         "--peer-ip", "198.18.8.1/24", "--echo", "7", "--trace", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while (line := proc.stdout.readline()) and line != "ready\n":
            pass
        subprocess.run(["ip", "netns", "exec", ns.name, "python3", "-c", client], check=True, timeout=20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return [line for line in out.splitlines() if " rx " in line or " tx " in line]


@pytest.mark.interop
def test_serve_trace_with_offloads_shows_the_kernels_frames_not_malformed_ones(netns):
    # With --offload the kernel hands over its segments (and takes ours) with the TCP
    # checksum still to be done: the trace decodes them, as tcpdump on such a NIC would.
    frames = traced_echo(netns("srvtro"), "wstro0", ["--offload"],
                         "import socket; s=socket.create_connection(('198.18.8.2', 7), 5); s.sendall(b'x' * 20000);"
                         "s.shutdown(1); n = 0\nwhile (d := s.recv(65536)): n += len(d)\nassert n == 20000, n")
    assert not [line for line in frames if "malformed" in line], frames
    assert any(" rx IP 198.18.8.1." in line and "Flags [S]" in line for line in frames), frames
    # A segment larger than the MTU each way: the kernel's (GRO/GSO) and ours (TSO).
    lengths = [(line.split()[1], int(line.rsplit("length ", 1)[1].split()[0])) for line in frames
               if " IP " in line and "length " in line]
    assert any(d == "rx" and n > 1448 for d, n in lengths), lengths
    assert any(d == "tx" and n > 1448 for d, n in lengths), lengths


@pytest.mark.interop
def test_serve_trace_lines_carry_timestamps_and_S_gives_absolute_seqs(netns):
    import re
    frames = traced_echo(netns("srvtr"), "wstr0", ["-S"],
                         "import socket; s=socket.create_connection(('198.18.8.2', 7), 5); s.sendall(b'hi');"
                         "s.shutdown(1); assert s.recv(10) == b'hi'; s.close()")
    assert frames and all(re.match(r"^\d\d:\d\d:\d\d\.\d{6} (rx|tx) ", line) for line in frames), frames[:3]
    syn = next(line for line in frames if "Flags [S]" in line)
    assert ", seq 0," not in syn                       # -S: the ISN as it is on the wire
