"""`wirestack nc` on a TAP device against a Linux echo server in a namespace, and on the
simulated wire."""

import hashlib
import os
import subprocess
import sys

import pytest



ECHO_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7007)); s.listen(1); print("listening", flush=True)
c, _ = s.accept()
while data := c.recv(65536):
    c.sendall(data)
c.shutdown(socket.SHUT_WR); c.close()
"""


@pytest.mark.interop
def test_nc_over_tap_round_trips_through_a_linux_echo_server(netns, tmp_path):
    ns = netns("nc")
    server = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", ECHO_SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        data = os.urandom(300_000)
        proc = subprocess.run([sys.executable, "-m", "wirestack", "nc", "--tap", "wsnc0", "--netns", ns.name,
                               "--ip", "198.18.4.2/24", "--peer-ip", "198.18.4.1/24", "198.18.4.1", "7007"],
                              input=data, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
        server.wait(timeout=10)
        # The namespace was ours: nc must have left it, and removed its TAP device.
        links = subprocess.run(["ip", "-n", ns.name, "-o", "link"], capture_output=True, text=True).stdout
        assert "wsnc0" not in links
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_nc_on_the_simulated_wire_echoes_stdin():
    data = os.urandom(50_000)
    proc = subprocess.run([sys.executable, "-m", "wirestack", "nc", "--loss", "0.1", "--seed", "3"],
                          input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout == data
    assert b"retransmitted" in proc.stderr
