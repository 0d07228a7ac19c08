"""The simulated adapter: FCS, padding, runts, address filter, taps."""

import zlib

from wirestack.sim import DecisionLog, Nic, Scheduler
from wirestack.trace.counters import Counters

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
BCAST = b"\xff" * 6


class FakeMedium:
    """Records what a NIC transmits; delivers what a test injects."""

    def __init__(self):
        self.name = "fake"
        self.log = DecisionLog(level="full")
        self.sent = []

    def tx(self, data):
        self.sent.append(data)


def frame(dst, src=MAC_A, payload=b"hello world " * 10):
    return dst + src + b"\x08\x00" + payload


def make(**kw):
    s = Scheduler()
    got = []
    c = Counters()
    nic = Nic(s, "b", MAC_B, got.append, counters=c, **kw)
    m = FakeMedium()
    nic.attach(m, m.tx)
    return s, nic, m, got, c


def with_fcs(f):
    return f + zlib.crc32(f).to_bytes(4, "little")


def test_send_appends_little_endian_crc32_fcs():
    _, nic, m, _, _ = make()
    f = frame(MAC_A)
    assert nic.send(f)
    data = m.sent[0]
    assert data[:-4] == f
    assert data[-4:] == zlib.crc32(f).to_bytes(4, "little")
    assert nic.tx_frames == 1


def test_short_frames_are_padded_to_the_ethernet_minimum():
    _, nic, m, _, _ = make()
    nic.send(frame(MAC_A, payload=b"x"))
    assert len(m.sent[0]) == 64          # 60 + FCS
    assert m.sent[0][15:60] == bytes(45)


def test_good_frame_is_delivered_without_fcs():
    _, nic, m, got, c = make()
    f = frame(MAC_B)
    nic.deliver(with_fcs(f), 1, m)
    assert got == [f]
    assert not c.nonzero()


def test_fcs_error_is_counted_and_dropped():
    _, nic, m, got, c = make()
    bad = bytearray(with_fcs(frame(MAC_B)))
    bad[20] ^= 0x04
    nic.deliver(bytes(bad), 7, m)
    assert got == []
    assert c["eth.rx_fcs_errors"] == 1
    assert m.log.filter(event="fcs_drop")[0]["frame"] == 7


def test_check_fcs_off_passes_corrupted_frame_up():
    _, nic, m, got, c = make(check_fcs=False)
    bad = bytearray(with_fcs(frame(MAC_B)))
    bad[20] ^= 0x04
    nic.deliver(bytes(bad), 1, m)
    assert got == [bytes(bad[:-4])]
    assert c["eth.rx_fcs_errors"] == 0


def test_runt_is_dropped():
    _, nic, m, got, c = make()
    nic.deliver(b"\x01" * 17, 1, m)
    assert got == [] and c["eth.rx_runts"] == 1


def test_address_filter_broadcast_multicast_and_promiscuous():
    _, nic, m, got, c = make()
    nic.deliver(with_fcs(frame(MAC_A)), 1, m)                        # someone else's
    nic.deliver(with_fcs(frame(BCAST)), 2, m)                        # broadcast
    nic.deliver(with_fcs(frame(bytes.fromhex("01005e000001"))), 3, m)  # multicast
    assert len(got) == 2
    assert c["eth.rx_not_for_us"] == 1
    nic.promiscuous = True
    nic.deliver(with_fcs(frame(MAC_A)), 4, m)
    assert len(got) == 3


def test_nic_down_neither_sends_nor_receives():
    _, nic, m, got, c = make()
    nic.up = False
    assert nic.send(frame(MAC_A)) is False
    nic.deliver(with_fcs(frame(MAC_B)), 1, m)
    assert m.sent == [] and got == []
    assert c["eth.tx_dropped_down"] == 1 and c["eth.rx_dropped_down"] == 1


def test_unattached_nic_counts_no_carrier():
    s = Scheduler()
    nic = Nic(s, "x", MAC_A)
    assert nic.send(frame(MAC_B)) is False
    assert nic.counters["eth.tx_no_carrier"] == 1


def test_taps_see_tx_and_rx_without_fcs():
    s, nic, m, got, _ = make()
    seen = []
    nic.add_tap(lambda now, d, f: seen.append((now, d, f)))
    out = frame(MAC_A)
    nic.send(out)
    inc = frame(MAC_B)
    nic.deliver(with_fcs(inc), 1, m)
    assert seen == [(0, "tx", out), (0, "rx", inc)]
