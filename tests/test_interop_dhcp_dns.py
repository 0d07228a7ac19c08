"""DHCP and DNS against Linux software, over TAP devices in namespaces the tests create:

* busybox udhcpc gets its address from `wirestack dhcp --serve`;
* `wirestack dhcp` gets its address from dnsmasq;
* dig resolves names at `wirestack dns --serve` (UDP, and TCP after a truncated answer);
* `wirestack dns` and `wirestack get http://name/` resolve names at dnsmasq.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import interop_skip_reason, require_tools

pytestmark = pytest.mark.interop
_reason = interop_skip_reason()
if _reason:
    pytestmark = [pytest.mark.interop, pytest.mark.skip(reason=_reason)]

PID = os.getpid()
WIRESTACK = [sys.executable, "-m", "wirestack"]


def _start(argv, tag="ready"):
    """Start a wirestack server command and wait for its 'ready' line."""
    proc = subprocess.Popen(WIRESTACK + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != tag:
        proc.kill()
        raise AssertionError(f"{argv[0]} did not start: {line!r} {proc.stderr.read()}")
    return proc


def _stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_udhcpc_gets_an_address_from_wirestack(netns, tmp_path):
    require_tools("udhcpc")
    ns = netns("dhs")
    script = tmp_path / "script.sh"
    log = tmp_path / "events"
    script.write_text("#!/bin/sh\n"
                      f'echo "$1 ip=$ip subnet=$subnet router=$router dns=$dns lease=$lease" >> {log}\n'
                      'if [ "$1" = bound ]; then ip addr add "$ip/24" dev "$interface"; fi\n')
    script.chmod(0o755)
    server = _start(["dhcp", "--netns", ns.name, "--tap", "wsdhs0", "--ip", "198.18.5.1/24",
                     "--serve", "198.18.5.50-198.18.5.60", "--router", "198.18.5.1",
                     "--dns-server", "198.18.5.53", "--lease", "600"])
    try:
        proc = ns.run(["udhcpc", "-i", "wsdhs0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", str(script)],
                      timeout=30)
        assert proc.returncode == 0, proc.stderr
        events = log.read_text().splitlines()
        assert "bound ip=198.18.5.50 subnet=255.255.255.0 router=198.18.5.1 dns=198.18.5.53 lease=600" in events
        # The address works: the kernel pings wirestack from it.
        ping = ns.run(["ping", "-c", "1", "-W", "2", "198.18.5.1"])
        assert "1 received" in ping.stdout
    finally:
        out, err = _stop(server)
    assert "lease 198.18.5.50" in out, (out, err)


@pytest.fixture
def dnsmasq(netns, tmp_path):
    """dnsmasq in its own namespace, waiting for the TAP device wirestack will create there:
    DHCP for 198.18.8.50-60 and DNS for *.lab.test."""
    require_tools("dnsmasq")
    ns = netns("dnsm")
    ns.run(["ip", "link", "set", "lo", "up"])
    proc = ns.popen(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--bind-dynamic",
                     "--interface=wsdm0", "--except-interface=lo", "--user=root", "--group=root",
                     f"--pid-file={tmp_path}/dnsmasq.pid", f"--dhcp-leasefile={tmp_path}/leases",
                     "--dhcp-range=198.18.8.50,198.18.8.60,255.255.255.0,2m",
                     "--dhcp-option=option:router,198.18.8.1",
                     "--dhcp-option=option:dns-server,198.18.8.1",
                     "--no-resolv", "--no-hosts",
                     "--address=/name.lab.test/198.18.8.99", "--address=/web.lab.test/198.18.8.1"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    yield ns
    proc.terminate()
    proc.wait(10)


def test_wirestack_gets_an_address_from_dnsmasq(dnsmasq):
    proc = subprocess.run(WIRESTACK + ["dhcp", "--netns", dnsmasq.name, "--tap", "wsdm0",
                                       "--peer-ip", "198.18.8.1/24", "--timeout", "30"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bound to 198.18.8.5") and lines[0].endswith("from 198.18.8.1, lease 120 s")
    assert lines[1:] == ["router 198.18.8.1", "dns 198.18.8.1"]


def test_wirestack_resolves_at_dnsmasq_and_gets_by_name(dnsmasq, tmp_path):
    tap = ["--netns", dnsmasq.name, "--tap", "wsdm0", "--ip", "198.18.8.2/24",
           "--peer-ip", "198.18.8.1/24", "--dns", "198.18.8.1"]
    proc = subprocess.run(WIRESTACK + ["dns", "name.lab.test", *tap], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "name.lab.test has address 198.18.8.99\n"
    proc = subprocess.run(WIRESTACK + ["dns", "absent.example", *tap], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    require_tools("python3")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_bytes(b"hello by name\n")
    web = dnsmasq.popen(["python3", "-m", "http.server", "8000"], cwd=tmp_path / "www",
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        proc = subprocess.run(WIRESTACK + ["get", *tap, "http://web.lab.test:8000/hello.txt"],
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b"hello by name\n"
        # A name the server does not know: one line, status 1 (the run failed), as curl says it.
        proc = subprocess.run(WIRESTACK + ["get", *tap, "http://absent.example:8000/hello.txt"],
                              capture_output=True, timeout=60)
        assert (proc.returncode, proc.stdout) == (1, b"")
        # (dnsmasq has no upstream here: it refuses, and the reason is "Temporary failure ...")
        assert proc.stderr.startswith(b"wirestack get: error: could not resolve host absent.example: ")
        assert proc.stderr.count(b"\n") == 1, proc.stderr
    finally:
        web.terminate()
        web.wait(10)


def test_dig_resolves_at_wirestack(netns):
    require_tools("dig")
    ns = netns("dns")
    many = ",".join(f"198.18.7.{i}" for i in range(1, 41))
    server = _start(["dns", "--serve", "--zone", "www.lab.test=198.18.6.10", "--zone", f"many.lab.test={many}",
                     "--netns", ns.name, "--tap", "wsdns0", "--ip", "198.18.6.53/24", "--peer-ip", "198.18.6.1/24"])
    try:
        dig = ["dig", "@198.18.6.53", "+tries=2", "+time=2"]
        out = ns.run(dig + ["www.lab.test", "A"]).stdout
        assert "status: NOERROR" in out and "flags: qr aa rd;" in out
        assert ns.run(dig + ["+short", "www.lab.test"]).stdout == "198.18.6.10\n"
        assert "status: NXDOMAIN" in ns.run(dig + ["nope.lab.test"]).stdout
        # 40 addresses do not fit in 512 bytes: dig is told TC and asks again over TCP.
        out = ns.run(dig + ["many.lab.test"]).stdout
        assert "Truncated, retrying in TCP mode" in out and "ANSWER: 40" in out, out
        assert sorted(ns.run(dig + ["+short", "+tcp", "many.lab.test"]).stdout.split()) == sorted(many.split(","))
    finally:
        _stop(server)
