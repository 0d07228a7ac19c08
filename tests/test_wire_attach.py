"""Attaching to a running `wirestack wire` with --wire (serve, ping, get, nc) and the
Python API, all as separate OS processes. Needs no root: stream ports are sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys

import pytest

from test_wire_cli import readline, wire

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
ENV = dict(os.environ, PYTHONPATH=SRC)


def ws(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wirestack", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, **kw)


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def lan(tmp_path):
    """A `wirestack wire --medium switch` with one unix stream port; yields its spec."""
    path = str(tmp_path / "lan.sock")
    w = wire("--medium", "switch", "--port", f"unix:{path}")
    assert readline(w) == "ready"
    yield f"unix:{path}", w
    stop(w)
    assert not os.path.exists(path)


def serve(spec: str, *extra: str) -> subprocess.Popen:
    """serve prints its address and services, then `ready` as the last start-up line."""
    s = ws("serve", "--wire", spec, "--ip", "198.18.0.2/24", "--mac", "02:00:00:00:00:02", *extra)
    try:
        lines = [readline(s)]        # waits (at most 10 s) for the first line
        # The rest came with it, already in the file object's buffer where select() cannot see it.
        while lines[-1] != "ready":
            assert lines[-1], f"serve ended before ready: {lines} {s.stderr.read()}"
            lines.append(s.stdout.readline().strip())
        assert lines[0] == f"wirestack 198.18.0.2/24 (02:00:00:00:00:02) on wire {spec}", lines
    except BaseException:
        stop(s)                      # a failed start-up check leaves no serve running
        raise
    return s


def test_plain_socket_qemu_client_gets_arp_reply(lan):
    """An independent client (socket + struct only) asks who has 198.18.0.2 and gets the
    answer from `wirestack serve --wire` running in another process."""
    spec, w = lan
    s = serve(spec)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(spec[len("unix:"):])
        c.settimeout(5)
        mine = bytes.fromhex("020000000099")
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mine, bytes([198, 18, 0, 9]),
                          bytes(6), bytes([198, 18, 0, 2]))
        eth = b"\xff" * 6 + mine + b"\x08\x06" + arp
        c.sendall(struct.pack("!I", len(eth)) + eth)
        buf = b""
        reply = None
        while reply is None:
            buf += c.recv(4096)
            while len(buf) >= 4:
                (n,) = struct.unpack("!I", buf[:4])
                if len(buf) < 4 + n:
                    break
                f, buf = buf[4:4 + n], buf[4 + n:]
                if f[12:14] == b"\x08\x06" and struct.unpack("!H", f[20:22])[0] == 2:
                    reply = f
        assert reply[:6] == mine
        hw, proto, hl, pl, op, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s", reply[14:42])
        assert (op, sha, spa, tha, tpa) == (2, bytes.fromhex("020000000002"), bytes([198, 18, 0, 2]),
                                            mine, bytes([198, 18, 0, 9]))
        c.close()
    finally:
        stop(s)


def test_ping_and_get_and_nc_across_the_wire(lan, tmp_path):
    spec, w = lan
    (tmp_path / "www").mkdir()
    body = os.urandom(200_000)
    (tmp_path / "www" / "blob").write_bytes(body)
    s = serve(spec, "--http", f"8080:{tmp_path / 'www'}", "--echo", "7")
    try:
        p = ws("ping", "--wire", spec, "--ip", "198.18.0.1/24", "-c", "3", "-i", "0.1", "198.18.0.2")
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "3 received" in out or "3 packets received" in out, out
        out_file = tmp_path / "got"
        g = ws("get", "--wire", spec, "--ip", "198.18.0.3/24", "-o", str(out_file), "http://198.18.0.2:8080/blob")
        _, err = g.communicate(timeout=30)
        assert g.returncode == 0, err
        assert out_file.read_bytes() == body
        n = ws("nc", "--wire", spec, "--ip", "198.18.0.4/24", "198.18.0.2", "7", stdin=subprocess.PIPE)
        out, err = n.communicate("hello over the wire\n", timeout=30)
        assert n.returncode == 0, err
        assert out == "hello over the wire\n"
    finally:
        stop(s)


def test_python_api_hosts_on_a_wire(lan):
    """RealtimeHost on a wire port: two hosts in this process, TCP echo through the wire process."""
    from wirestack.apps import services
    from wirestack.runtime.realtime import attach_to_wire
    spec, w = lan

    async def main():
        a = attach_to_wire(spec, "198.18.0.11/24", name="a")
        b = attach_to_wire(spec, "198.18.0.12/24", name="b")
        try:
            await b.start_server(services.echo, 7)
            reader, writer = await asyncio.wait_for(a.open_connection("198.18.0.12", 7), 10)
            data = os.urandom(100_000)
            writer.write(data)
            await writer.drain()
            writer.write_eof()
            got = await asyncio.wait_for(_read_all(reader), 20)
            writer.close()
            return got == data
        finally:
            for rt in (a, b):
                rt.stop()
                rt.device.close()

    async def _read_all(reader):
        chunks = []
        while chunk := await reader.read(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    assert asyncio.run(main())


def test_wire_option_errors_are_one_line(tmp_path):
    p = ws("ping", "--wire", f"unix:{tmp_path}/none.sock", "--ip", "198.18.0.1/24", "198.18.0.2")
    _, err = p.communicate(timeout=20)
    assert p.returncode == 1 and err.strip().endswith("No such file or directory") and "Traceback" not in err
    p = ws("serve", "--wire", "tcp:localhost", "--ip", "198.18.0.1/24")
    _, err = p.communicate(timeout=20)
    assert p.returncode == 2 and "not a stream address" in err
    for device in ("--tap", "--tun"):
        p = ws("serve", "--wire", f"unix:{tmp_path}/none.sock", device, "ws0", "--ip", "198.18.0.1/24")
        _, err = p.communicate(timeout=20)
        assert (p.returncode, err) == (2, f"wirestack serve: error: --wire and {device} are two ways "
                                          "to attach the host: give one\n")
