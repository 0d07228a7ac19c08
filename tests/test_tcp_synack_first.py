"""A listener answers a SYN before it makes the child's TCB (tcp/listener.py): the SYN,ACK is
handed to the runtime (``TcpLayer.push_output``) while no connection exists yet, and it is the
same segment the child sends when it retransmits it -- same sequence numbers, window and
options, whatever the SYN offered and whatever our configuration allows."""

from __future__ import annotations

import pytest

from tcp_harness import RawPeer
from wirestack.tcp import TcpConfig
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw

SYN_OPTIONS = {
    "all": dict(mss=1460, wscale=7, sack_permitted=True, ts=(4242, 0)),
    "none": dict(),
    "mss only": dict(mss=1200),
    "timestamps, no scaling": dict(mss=1460, ts=(77, 0)),
    "scaling and SACK, no timestamps": dict(mss=1460, wscale=2, sack_permitted=True),
}
CONFIGS = {
    "default": TcpConfig(),
    "no options of ours": TcpConfig(window_scaling=False, timestamps=False, sack=False),
    "small buffer, mss cap": TcpConfig(rcvbuf=32768, mss=1000),
}


def listening_peer(cfg: TcpConfig) -> RawPeer:
    p = RawPeer(cfg)
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(4)
    return p


def test_the_syn_ack_is_handed_over_before_the_child_exists():
    p = listening_peer(TcpConfig())
    seen = []
    p.layer.push_output = lambda: seen.append(
        ([s.flags for s in p.out], [c.state for c in p.layer.connections()]))
    p.inject("S", 1000, options=tcpw.encode_options(**SYN_OPTIONS["all"]))
    assert seen == [(["S."], [])]            # the SYN,ACK was out, no TCB yet
    assert [c.state for c in p.layer.connections()] == ["SYN_RECEIVED"]
    assert p.counters["tcp.passive_opens"] == 1 and p.counters["tcp.out_segs"] == 1


@pytest.mark.parametrize("cfg", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("offer", SYN_OPTIONS.values(), ids=SYN_OPTIONS.keys())
def test_the_listeners_syn_ack_is_the_one_the_child_retransmits(cfg, offer):
    p = listening_peer(cfg)
    p.now = 5 * SEC
    p.inject("S", 1000, window=29200, options=tcpw.encode_options(**offer))
    first = p.take()
    assert [s.flags for s in first] == ["S."]
    p.advance(cfg.rto_initial)                # no ACK: the child sends its SYN,ACK again
    again = [s for s in p.take() if s.has("S")]
    assert again, "the SYN,ACK was not retransmitted"
    a, b = first[0].h, again[0].h
    assert (a.seq, a.ack, a.flags, a.window, a.sport, a.dport) == \
           (b.seq, b.ack, b.flags, b.window, b.sport, b.dport)
    oa, ob = a.options, b.options
    assert (oa.mss, oa.wscale, oa.sack_permitted, oa.ts_ecr) == \
           (ob.mss, ob.wscale, ob.sack_permitted, ob.ts_ecr)
    if oa.ts_val is not None:
        assert (ob.ts_val - oa.ts_val) % 2**32 == cfg.rto_initial // MS   # same clock offset
    conn = p.layer.connections()[0]
    assert conn.state == "SYN_RECEIVED" and conn.iss == a.seq and conn.retransmits == 1
    # What the options say is what the child uses.
    assert conn.ws_ok == (oa.wscale is not None) and conn.sack_ok == oa.sack_permitted
    assert conn.ts_ok == (oa.ts_val is not None)
