"""The real-time wire in-process: QEMU stream framing, stream ports, the real-time driver,
and the claim that it runs the simulation's own impairment code (same seed, same frames in
the same order -> the same fates as a virtual-time Link)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest

from wirestack.phy.stream import FrameDecoder, FramingError, StreamDevice, encode
from wirestack.sim import Link, LinkParams, Nic, Scheduler
from wirestack.wireproc.ports import OUT_LIMIT
from wirestack.wireproc.service import WireService
from wirestack.wireproc.topology import TopologyError, from_dict

BCAST = b"\xff" * 6


def frame(src_last: int, n: int, size: int = 60) -> bytes:
    """A broadcast frame from 02:00:00:00:00:<src_last> carrying counter n."""
    body = n.to_bytes(4, "big")
    return BCAST + bytes([2, 0, 0, 0, 0, src_last]) + b"\x88\xb5" + body + bytes(size - 18)


# -- framing ---------------------------------------------------------------------------------

def test_decoder_reassembles_frames_split_anywhere():
    frames = [frame(1, i, 60 + i) for i in range(5)]
    stream = b"".join(encode(f) for f in frames)
    for step in (1, 3, 7, 64, len(stream)):
        d = FrameDecoder()
        got = []
        for i in range(0, len(stream), step):
            got += d.feed(stream[i:i + step])
        assert got == frames and d.pending == 0


def test_decoder_rejects_bad_length_but_keeps_earlier_frames():
    good = frame(1, 1)
    d = FrameDecoder()
    with pytest.raises(FramingError) as ei:
        d.feed(encode(good) + struct.pack(">I", 65536) + b"junk")
    assert "65536" in str(ei.value) and ei.value.frames == [good]
    with pytest.raises(FramingError):
        FrameDecoder().feed(struct.pack(">I", 0))
    assert FrameDecoder().feed(struct.pack(">I", 65535)) == []   # the largest allowed: waits


# -- topology ----------------------------------------------------------------------------------

def test_topology_errors_name_the_place():
    with pytest.raises(TopologyError, match="unknown link parameter 'los'"):
        from_dict({"medium": [{"name": "m", "params": {"los": 0.1}, "port": [{"spec": "unix:/x"}]}]})
    with pytest.raises(TopologyError, match="hub has no impairments"):
        from_dict({"medium": [{"kind": "hub", "params": {"loss": 0.1}, "port": [{"spec": "unix:/x"}]}]})
    with pytest.raises(TopologyError, match="no ports"):
        from_dict({"medium": [{"name": "m"}]})
    t = from_dict({"medium": [{"name": "m", "kind": "switch", "params": {"delay_ms": 2, "rate_mbps": 10},
                               "port": [{"spec": "unix:/x", "inbound": {"loss": 0.5}}]}]})
    p = t.ports[0]
    assert p.params_in.loss == 0.5 and p.params_in.delay == 2_000_000 and p.params_in.rate_bps == 10_000_000
    assert p.params_out.loss == 0.0 and p.params_out.delay == 2_000_000


# -- the wire in-process -------------------------------------------------------------------------

class Client:
    """A plain QEMU-framing client (blocking socket, its own decoder)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.dec = FrameDecoder()

    def send(self, f: bytes) -> None:
        self.sock.sendall(encode(f))

    def recv_all(self) -> list[bytes]:
        out = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            if not data:
                return out
            out += self.dec.feed(data)


async def _settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)


def _service(tmp_path, medium: dict, **kw) -> tuple[WireService, list[str]]:
    lines: list[str] = []
    topo = from_dict({"seed": 7, "medium": [medium]})
    svc = WireService(topo, asyncio.get_running_loop(), say=lines.append, **kw)
    svc.start()
    return svc, lines


def test_link_over_stream_port_makes_the_simulations_decisions(tmp_path):
    """200 frames a->b across a link with 30% loss: the frames that arrive are exactly those
    a virtual-time Link with the same seed and name lets through."""
    path = str(tmp_path / "w.sock")
    params = {"loss": 0.3, "duplicate": 0.05}

    async def main():
        svc, lines = _service(tmp_path, {"name": "wire", "kind": "link", "params": params,
                                         "port": [{"spec": f"unix:{path}"}]})
        try:
            a, b = Client(path), Client(path)
            await _settle()
            for i in range(200):
                a.send(frame(1, i))
                if i % 20 == 19:
                    await _settle(0.01)
            await _settle(0.2)
            got = [int.from_bytes(f[14:18], "big") for f in b.recv_all()]
            return got, lines, svc.report()
        finally:
            svc.close()

    got, lines, report = asyncio.run(main())
    assert lines[0].startswith("attached p0#1") and lines[1].startswith("attached p0#2")

    # The same 200 frames through the simulation's Link, on virtual time.
    sched = Scheduler()
    seen = []
    na = Nic(sched, "a", b"\x02" + bytes(5), promiscuous=True)
    nb = Nic(sched, "b", b"\x02" + bytes(4) + b"\x01", promiscuous=True,
             on_receive=lambda f: seen.append(int.from_bytes(f[14:18], "big")))
    Link(sched, na, nb, LinkParams(loss=0.3, duplicate=0.05), seed=7, name="wire")
    for i in range(200):
        na.send(frame(1, i))
        sched.run()
    assert got == seen
    assert 100 < len(set(got)) < 180 and len(got) > len(set(got))   # losses and duplicates both happened
    assert report["decisions"]["arrived"] == 200


def test_bad_length_prefix_closes_only_that_client(tmp_path):
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "lan", "kind": "hub", "port": [{"spec": f"unix:{path}"}]})
        try:
            a, b, c = Client(path), Client(path), Client(path)
            await _settle()
            c.sock.sendall(struct.pack(">I", 70000) + b"garbage")
            await _settle()
            a.send(frame(1, 42))
            await _settle()
            got_b = b.recv_all()
            eof_c = c.sock.recv(10)
            return lines, got_b, eof_c, svc.report()
        finally:
            svc.close()

    lines, got_b, eof_c, report = asyncio.run(main())
    assert any(line.startswith("detached p0#3") and "bad length prefix 70000" in line for line in lines)
    assert [int.from_bytes(f[14:18], "big") for f in got_b] == [42]
    assert eof_c == b""
    assert report["ports"]["p0"]["closed_bad_length"] == 1
    assert not os.path.exists(path)          # close() removed the socket file


def test_link_refuses_a_third_station_and_frees_an_end_on_disconnect(tmp_path):
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "wire", "port": [{"spec": f"unix:{path}"}]})
        try:
            a, b = Client(path), Client(path)
            await _settle()
            c = Client(path)
            await _settle()
            refused = c.sock.recv(10) == b""
            a.sock.close()
            await _settle()
            d = Client(path)             # takes the freed end a
            await _settle()
            d.send(frame(4, 9))
            await _settle()
            return lines, refused, b.recv_all()
        finally:
            svc.close()

    lines, refused, got = asyncio.run(main())
    assert refused and any(line.startswith("refused p0#3") for line in lines)
    assert any(line.startswith("detached p0#1") and "disconnected" in line for line in lines)
    assert any(line.startswith("attached p0#4") and "station wire.a" in line for line in lines)
    assert [int.from_bytes(f[14:18], "big") for f in got] == [9]


def test_slow_reader_counts_transport_drops_not_wire_decisions(tmp_path):
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "wire", "port": [{"spec": f"unix:{path}"}]})
        try:
            a, b = Client(path), Client(path)
            b.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await _settle()
            big = frame(1, 0, 1514)
            n = 3 * OUT_LIMIT // len(big)
            for i in range(n):
                a.send(big)
                if i % 50 == 0:
                    await _settle(0.001)
            await _settle(0.2)
            return svc.report(), n
        finally:
            svc.close()

    report, n = asyncio.run(main())
    port = report["ports"]["p0"]
    assert port["transport_drops"] > 0
    assert port["rx_frames"] == n
    assert "dropped_loss" not in report["decisions"]


def test_stream_device_is_a_host_device(tmp_path):
    """StreamDevice (what `--wire unix:PATH` uses) sends and receives through the wire."""
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "wire", "port": [{"spec": f"unix:{path}"}]})
        try:
            dev = StreamDevice(f"unix:{path}")
            peer = Client(path)
            await _settle()
            dev.write(frame(1, 5))
            await _settle()
            got = peer.recv_all()
            peer.send(frame(2, 6))
            await _settle()
            back = dev.read_frames()
            peer.sock.close()
            dev.close()
            return got, back
        finally:
            svc.close()

    got, back = asyncio.run(main())
    assert [int.from_bytes(f[14:18], "big") for f in got] == [5]
    assert [int.from_bytes(f[14:18], "big") for f in back] == [6]


def test_switch_port_decisions_do_not_depend_on_who_connected_first(tmp_path):
    """Each port's cable draws from a stream named after the port, so the fates of port x's
    frames are the same whether x's client or y's client attached first."""
    px, py = str(tmp_path / "x.sock"), str(tmp_path / "y.sock")

    async def run(x_first: bool):
        svc, lines = _service(tmp_path, {"name": "lan", "kind": "switch",
                                         "port": [{"name": "x", "spec": f"unix:{px}", "params": {"loss": 0.5}},
                                                  {"name": "y", "spec": f"unix:{py}"}]})
        try:
            if x_first:
                x = Client(px)
                await _settle()
                y = Client(py)
            else:
                y = Client(py)
                await _settle()
                x = Client(px)
            await _settle()
            for i in range(60):
                x.send(frame(1, i))
            await _settle(0.2)
            return [int.from_bytes(f[14:18], "big") for f in y.recv_all()]
        finally:
            svc.close()

    a = asyncio.run(run(True))
    b = asyncio.run(run(False))
    assert a == b and 0 < len(a) < 60


def test_topology_faults_and_down_window_on_a_link(tmp_path):
    """A scripted fault (drop the 2nd frame a->b) and a down window from the topology act on
    the wire in real time, and the decision log says so."""
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "wire", "port": [{"spec": f"unix:{path}"}],
                                         "fault": [{"action": "drop", "nth": 2, "direction": "a>b"}],
                                         "down": [{"at_s": 0.2, "for_s": 0.4}]})
        try:
            a, b = Client(path), Client(path)
            await _settle()
            for i in range(3):
                a.send(frame(1, i))
            await _settle(0.3)            # now inside the down window
            a.send(frame(1, 3))
            await _settle(0.4)            # up again
            a.send(frame(1, 4))
            await _settle()
            return [int.from_bytes(f[14:18], "big") for f in b.recv_all()], svc.report()
        finally:
            svc.close()

    got, report = asyncio.run(main())
    assert got == [0, 2, 4]
    assert report["decisions"]["fault"] == 1 and report["decisions"]["link_down"] == 1
    with pytest.raises(TopologyError, match="match must be one of"):
        from_dict({"medium": [{"port": [{"spec": "unix:/x"}], "fault": [{"action": "drop", "match": "syn"}]}]})


def test_a_client_that_stops_reading_is_closed_as_stalled(tmp_path):
    path = str(tmp_path / "w.sock")

    async def main():
        svc, lines = _service(tmp_path, {"name": "lan", "kind": "hub", "port": [{"spec": f"unix:{path}"}]})
        svc.ports[0].stall_timeout = 0.3
        try:
            a, b = Client(path), Client(path)
            b.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await _settle()
            for i in range(400):                 # ~600 KB towards b, which never reads
                a.send(frame(1, i, 1514))
                if i % 50 == 0:
                    await _settle(0.001)
            await asyncio.sleep(1.6)             # the stall check runs once a second
            a.send(frame(1, 999))                 # a still works
            await _settle()
            return lines, svc.report()
        finally:
            svc.close()

    lines, report = asyncio.run(main())
    assert any(line.startswith("detached p0#2") and "stalled" in line for line in lines), lines
    assert not any(line.startswith("detached p0#1") for line in lines)
    assert report["ports"]["p0"]["closed_stalled"] == 1
    assert report["ports"]["p0"]["rx_frames"] == 401


def test_tcp_stream_port(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    spec = f"tcp:127.0.0.1:{port}"

    async def main():
        svc, lines = _service(tmp_path, {"name": "lan", "kind": "switch", "port": [{"spec": spec}]})
        try:
            a, b = StreamDevice(spec), StreamDevice(spec)
            await _settle()
            a.write(frame(1, 77))
            await _settle()
            got = b.read_frames()
            a.close()
            b.close()
            await _settle()
            return got, lines
        finally:
            svc.close()

    got, lines = asyncio.run(main())
    assert [int.from_bytes(f[14:18], "big") for f in got] == [77]
    assert sum(line.startswith("detached") for line in lines) == 2
