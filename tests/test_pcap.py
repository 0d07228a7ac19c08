"""Classic pcap writer/reader, from virtual time."""

import io
import struct
from decimal import Decimal

import pytest

from wirestack.sim import Link, LinkParams, Nic, Scheduler
from wirestack.trace.pcap import MAGIC_NS, MAGIC_US, PcapReader, PcapWriter
from wirestack.units import MS, SEC, US

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def frames():
    return [MAC_B + MAC_A + b"\x88\xb5" + bytes([i]) * (50 + i) for i in range(5)]


STAMPS = [0, 1 * US, 1 * SEC + 234_567_891, 2 * SEC, 3 * SEC + 999_999_999]


def test_global_header_bytes():
    buf = io.BytesIO()
    PcapWriter(buf, snaplen=1000).close()
    assert buf.getvalue() == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 1000, 1)
    buf = io.BytesIO()
    PcapWriter(buf, nanosecond=True).close()
    assert buf.getvalue()[:4] == b"\x4d\x3c\xb2\xa1"
    assert struct.unpack("<I", buf.getvalue()[:4])[0] == MAGIC_NS


def test_roundtrip_microsecond(tmp_path):
    p = tmp_path / "a.pcap"
    with PcapWriter(p) as w:
        for t, f in zip(STAMPS, frames()):
            w.write(t, f)
    with PcapReader(p) as r:
        got = list(r)
        assert r.linktype == 1 and not r.nanosecond
    assert [f for _, f in got] == frames()
    assert [t for t, _ in got] == [t // 1000 * 1000 for t in STAMPS]   # truncated to µs


def test_roundtrip_nanosecond(tmp_path):
    p = tmp_path / "a.pcap"
    with PcapWriter(p, nanosecond=True) as w:
        for t, f in zip(STAMPS, frames()):
            w.write(t, f)
    assert list(PcapReader(p)) == list(zip(STAMPS, frames()))


def test_snaplen_truncates_but_keeps_original_length(tmp_path):
    p = tmp_path / "a.pcap"
    with PcapWriter(p, snaplen=20) as w:
        w.write(5, bytes(range(100)))
    data = p.read_bytes()
    assert struct.unpack("<IIII", data[24:40]) == (0, 0, 20, 100)
    assert list(PcapReader(p)) == [(0, bytes(range(20)))]


def test_reader_rejects_non_pcap():
    with pytest.raises(ValueError):
        PcapReader(io.BytesIO(b"\x0a\x0d\x0d\x0a" + bytes(40)))   # pcapng


def test_big_endian_file_is_read():
    head = struct.pack(">IHHiIII", MAGIC_US, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack(">IIII", 7, 250, 3, 3) + b"abc"
    assert list(PcapReader(io.BytesIO(head + rec))) == [(7 * SEC + 250_000, b"abc")]


def capture_sim(path, nanosecond=False):
    s = Scheduler()
    a, b = Nic(s, "a", MAC_A), Nic(s, "b", MAC_B)
    link = Link(s, a, b, LinkParams(rate_bps=10_000_000, delay=3 * MS, loss=0.2), seed=11)
    with PcapWriter(path, nanosecond=nanosecond) as w:
        b.add_tap(lambda now, d, f: w.write(now, f))
        for i, f in enumerate(frames() * 4):
            s.call_at(i * 777 * US, a.send, f)
        s.run()
    return link


def test_simulated_capture_is_byte_identical_across_runs(tmp_path):
    capture_sim(tmp_path / "1.pcap")
    capture_sim(tmp_path / "2.pcap")
    one = (tmp_path / "1.pcap").read_bytes()
    assert one == (tmp_path / "2.pcap").read_bytes()
    assert 10 < len(list(PcapReader(tmp_path / "1.pcap"))) < 20   # some were lost


@pytest.mark.parametrize("nanosecond", [False, True])
def test_scapy_reads_our_files_with_correct_timestamps(tmp_path, nanosecond):
    scapy_utils = pytest.importorskip("scapy.utils")
    pytest.importorskip("scapy.layers.l2")   # registers linktype 1 -> Ether
    p = tmp_path / "c.pcap"
    with PcapWriter(p, nanosecond=nanosecond) as w:
        for t, f in zip(STAMPS, frames()):
            w.write(t, f)
    pkts = scapy_utils.rdpcap(str(p))
    assert [bytes(pk) for pk in pkts] == frames()
    unit = 1 if nanosecond else 1000
    for pk, t in zip(pkts, STAMPS):
        assert Decimal(pk.time) == Decimal(t // unit * unit) / Decimal(SEC)
    assert pkts[0].src == "02:00:00:00:00:01" and pkts[0].dst == "02:00:00:00:00:02"
