"""The RFC 9293 state machine at the level of segments: every edge of the state
diagram, RST in every state, simultaneous open/close, half-close, resets for closed ports."""

import pytest

from tcp_harness import A_IP, B_IP, RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TRANSITIONS, TcpConfig
from wirestack.units import MS, SEC
from wirestack.wire import tcp as tcpw

FAST = TcpConfig(msl=1 * SEC)


def edges(log):
    return {(e["old"], e["new"]) for e in log.filter("state")}


# ---------------------------------------------------------------------- whole diagram
def test_every_edge_of_the_state_diagram_is_taken():
    seen = set()
    # 1. open, transfer, active close on a / passive close on b
    w = Wire(seed=1)
    a, b = w.pair(FAST)
    c, s, lst = connect_pair(w, a, b)
    c.send(b"hello")
    c.shutdown_write()
    w.run_until(lambda: s.state == "CLOSE_WAIT")
    assert s.recv(100) == b"hello"
    s.close()
    lst.close()
    w.run_until(lambda: a.tcp.connection_count() == 0 and b.tcp.connection_count() == 0)
    seen |= edges(a.log) | edges(b.log)

    # 2. simultaneous open, then simultaneous close
    w = Wire(seed=2)
    a, b = w.pair(FAST)
    x, y = a.socket(), b.socket()
    x.bind((A_IP, 5000))
    y.bind((B_IP, 6000))
    x.connect((B_IP, 6000))
    y.connect((A_IP, 5000))
    w.run_until(lambda: x.state == y.state == "ESTABLISHED")
    x.shutdown_write()
    y.shutdown_write()
    w.run_until(lambda: x.state == y.state == "TIME_WAIT")
    w.run_until(lambda: a.tcp.connection_count() == b.tcp.connection_count() == 0)
    seen |= edges(a.log) | edges(b.log)

    # 3. edges the peer has to force: SYN_RECEIVED -> FIN_WAIT_1, SYN_RECEIVED -> LISTEN,
    #    SYN_SENT -> CLOSED, resets and aborts
    p = RawPeer()
    sk = p.socket()
    sk.connect((B_IP, 80))
    p.poll()
    syn = p.take()[0]
    p.inject("S", 7000, sport=80, dport=syn.h.sport, options=tcpw.encode_options(mss=1460))
    assert sk.state == "SYN_RECEIVED"
    sk.shutdown_write()
    assert sk.state == "FIN_WAIT_1"
    lst = p.socket()
    lst.bind(("0.0.0.0", 81))
    lst.listen(4)
    p.inject("S", 100, sport=41000, dport=81)
    p.inject("R", 101, sport=41000, dport=81)
    sk2 = p.socket()
    sk2.connect((B_IP, 82))
    sk2.close()
    seen |= edges(p.log)

    figure = {(old, new) for old, news in TRANSITIONS.items() for new in news}
    # Edges in TRANSITIONS that are implementation extras, not in RFC 9293 Figure 5:
    extras = {(s, "CLOSED") for s in ("SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
                                      "CLOSE_WAIT", "CLOSING")} | {("FIN_WAIT_1", "TIME_WAIT")}
    missing = figure - extras - seen
    assert not missing, f"edges never taken: {sorted(missing)}"
    assert seen <= figure


def test_illegal_transition_is_caught():
    p = RawPeer()
    _, s, _, _ = p.passive()
    conn = s._conn
    with pytest.raises(AssertionError):
        conn._set_state("LISTEN", 0)


# ---------------------------------------------------------------------- handshake details
def test_three_way_handshake_segments():
    w = Wire(seed=3)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    syn, synack, ack = w.trace[:3]
    assert syn.flags == "S" and synack.flags == "S." and ack.flags == "."
    assert synack.ack == (syn.seq + 1) & 0xFFFFFFFF
    assert ack.seq == (syn.seq + 1) & 0xFFFFFFFF and ack.ack == (synack.seq + 1) & 0xFFFFFFFF
    assert syn.h.options.mss == 1460 and synack.h.options.mss == 1460
    assert syn.h.options.wscale is not None and syn.h.options.has_ts
    assert c.stats()["window_scaling"] and c.stats()["timestamps"]


def test_mss_option_honoured_and_536_default():
    p = RawPeer()
    _, s, theirs, ours = p.passive(options=tcpw.encode_options(mss=700))
    s.send(b"x" * 3000)
    p.poll()
    sizes = [len(x.data) for x in p.take() if x.data]
    assert max(sizes) == 700
    p2 = RawPeer()
    _, s2, _, _ = p2.passive(options=b"")
    assert s2.stats()["snd_mss"] == 536   # RFC 9293 §3.7.1
    syn = [x for x in p2.all if x.has("S.")][0]
    assert syn.h.options.mss == 1460 and syn.h.options.wscale is None  # not offered back


def test_mss_sent_follows_mtu_and_override():
    p = RawPeer(mtu=1000)
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    assert p.take()[0].h.options.mss == 960
    s2 = p.socket(mss=500)
    s2.connect((B_IP, 80))
    p.poll()
    assert p.take()[0].h.options.mss == 500


def test_isn_differs_per_tuple_and_moves_with_clock():
    p = RawPeer()
    a = p.layer.initial_seq(b"\1\1\1\1", 1, b"\2\2\2\2", 2, 0)
    b = p.layer.initial_seq(b"\1\1\1\1", 1, b"\2\2\2\2", 3, 0)
    c = p.layer.initial_seq(b"\1\1\1\1", 1, b"\2\2\2\2", 2, 4000 * 1000)
    assert a != b
    assert (c - a) & 0xFFFFFFFF == 1000        # 4 µs clock (RFC 6528 / RFC 9293 §3.4.1)


# ---------------------------------------------------------------------- no socket -> RST
def test_syn_to_closed_port_is_refused():
    w = Wire(seed=4)
    a, b = w.pair()
    c = a.socket()
    c.connect((B_IP, 81))
    w.run_until(lambda: c.error is not None)
    assert isinstance(c.error, ConnectionRefusedError)
    assert c.state == "CLOSED"
    rst = w.segs(b, "R")[0]
    syn = w.segs(a, "S")[0]
    assert rst.has("R.") and rst.seq == 0 and rst.ack == (syn.seq + 1) & 0xFFFFFFFF
    assert b.counters["tcp.in_no_socket"] == 1
    with pytest.raises(ConnectionRefusedError):
        c.recv(10)
    assert a.tcp.connection_count() == 0


def test_reset_generation_rules_for_closed_port():
    p = RawPeer()
    p.inject(".", 100, 555, data=b"abc", dport=99)
    r = p.take()
    assert len(r) == 1 and r[0].flags == "R" and r[0].seq == 555      # <SEQ=SEG.ACK><CTL=RST>
    p.inject("F", 100, 0, data=b"abc", dport=99)
    r = p.take()
    assert r[0].flags == "R." and r[0].seq == 0 and r[0].ack == 104     # SEQ+LEN (FIN counts)
    p.inject("R", 100, 0, dport=99)
    p.inject("R.", 100, 7, dport=99)
    assert p.take() == []                                              # never RST a RST
    assert p.counters["tcp.in_no_socket"] == 4


# ---------------------------------------------------------------------- RST in each state
def _setup(state):
    """Put the layer under test in ``state``; return (peer, socket-or-None, rcv_nxt of the
    DUT (the seq the peer must use), the DUT's snd_nxt, ports)."""
    p = RawPeer(TcpConfig(msl=1 * SEC))
    if state == "SYN_RECEIVED":
        lst = p.socket()
        lst.bind(("0.0.0.0", 80))
        lst.listen(4)
        p.inject("S", 1000, sport=40000, dport=80, options=tcpw.encode_options(mss=1460))
        sa = p.take()[0]
        return p, None, 1001, sa.seq + 1, (40000, 80)
    if state == "SYN_SENT":
        s = p.socket()
        s.connect((B_IP, 80))
        p.poll()
        syn = p.take()[0]
        return p, s, None, syn.seq + 1, (80, syn.h.sport)
    _, s, theirs, ours = p.passive()
    ports = (40000, 80)
    if state in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT"):
        s.shutdown_write()
        p.poll()
        fin = p.take()[-1]
        assert fin.has("F")
        ours += 1
        if state in ("FIN_WAIT_2", "TIME_WAIT"):
            p.inject(".", theirs, ours)
        if state in ("CLOSING", "TIME_WAIT"):
            p.inject("F.", theirs, ours - (1 if state == "CLOSING" else 0))
            theirs += 1
    elif state in ("CLOSE_WAIT", "LAST_ACK"):
        p.inject("F.", theirs, ours)
        theirs += 1
        if state == "LAST_ACK":
            s.shutdown_write()
            p.poll()
            ours += 1
    p.take()
    conn = p.layer.connections()[0]
    assert conn.state == state, conn.state
    return p, s, theirs, ours, ports


SYNC_STATES = ["SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
               "CLOSING", "LAST_ACK", "TIME_WAIT"]


@pytest.mark.parametrize("state", SYNC_STATES)
def test_rst_in_window_is_accepted(state):
    p, s, theirs, ours, (sport, dport) = _setup(state)
    p.inject("R", theirs, 0, sport=sport, dport=dport)
    assert p.layer.connection_count() == 0
    assert p.take() == []                           # nothing answers a reset
    if state in ("ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT"):
        assert isinstance(s.error, ConnectionResetError)
        assert s.state == "CLOSED"
    elif s is not None:
        assert s.error is None and s.state == "CLOSED"
    if state == "SYN_RECEIVED":
        assert p.log.filter("state", old="SYN_RECEIVED")[-1]["new"] == "LISTEN"


@pytest.mark.parametrize("state", SYNC_STATES)
@pytest.mark.parametrize("where", ["below", "above"])
def test_rst_out_of_window_is_ignored(state, where):
    p, s, theirs, ours, (sport, dport) = _setup(state)
    seq = theirs - 5000 if where == "below" else theirs + 200_000
    p.inject("R", seq, 0, sport=sport, dport=dport)
    assert p.layer.connection_count() == 1
    assert p.layer.connections()[0].state == state
    assert p.counters["tcp.in_rst_out_of_window"] == 1


def test_rst_in_syn_sent_needs_acceptable_ack():
    p, s, _, ours, (sport, dport) = _setup("SYN_SENT")
    p.inject("R.", 0, ours + 10, sport=sport, dport=dport)   # unacceptable ACK: ignored
    assert s.state == "SYN_SENT"
    p.inject("R.", 0, ours, sport=sport, dport=dport)
    assert s.state == "CLOSED" and isinstance(s.error, ConnectionRefusedError)


def test_rst_challenge_ack_option():
    p = RawPeer(TcpConfig(rst_challenge=True))
    _, s, theirs, ours = p.passive()
    p.inject("R", theirs + 10, 0)                   # in window, not exact: challenge ACK
    out = p.take()
    assert s.state == "ESTABLISHED" and out and out[0].flags == "." and out[0].ack == theirs
    p.inject("R", theirs, 0)
    assert isinstance(s.error, ConnectionResetError)


def test_syn_in_window_gets_challenge_ack():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.inject("S", theirs + 5, 0, options=tcpw.encode_options(mss=1460))
    out = p.take()
    assert s.state == "ESTABLISHED"
    assert [x.flags for x in out] == ["."] and out[0].ack == theirs


def test_ack_in_syn_sent_for_unsent_data_gets_reset():
    p, s, _, ours, (sport, dport) = _setup("SYN_SENT")
    p.inject("S.", 9000, ours + 100, sport=sport, dport=dport)
    out = p.take()
    assert out[0].flags == "R" and out[0].seq == ours + 100
    assert s.state == "SYN_SENT"


def test_bad_ack_in_syn_received_gets_reset():
    p, _, theirs, ours, (sport, dport) = _setup("SYN_RECEIVED")
    p.inject(".", theirs, ours + 50, sport=sport, dport=dport)
    out = p.take()
    assert out[0].flags == "R" and out[0].seq == ours + 50
    assert p.layer.connections()[0].state == "SYN_RECEIVED"


def test_duplicate_syn_in_syn_received_repeats_syn_ack():
    p, _, theirs, ours, (sport, dport) = _setup("SYN_RECEIVED")
    p.inject("S", theirs - 1, 0, sport=sport, dport=dport, options=tcpw.encode_options(mss=1460))
    out = p.take()
    assert out[0].flags == "S." and out[0].seq == ours - 1


def test_syn_received_child_answers_stats_icmp_and_close_before_established():
    # A listener's child makes its send buffer, loss recovery and congestion controller
    # only when the handshake completes; what reaches it before must still work.
    p, _, theirs, ours, (sport, dport) = _setup("SYN_RECEIVED")
    child = p.layer.connections()[0]
    st = child.stats()
    assert st["state"] == "SYN_RECEIVED" and st["send_queue"] == 0
    assert st["cwnd"] == 4 * 536 and st["dup_acks"] == 0   # RFC 5681 IW before the MSS is known
    # RFC 1191: a fragmentation-needed error quoting our SYN,ACK lowers the MSS.
    quoted = dport.to_bytes(2, "big") + sport.to_bytes(2, "big") + (ours - 1).to_bytes(4, "big")
    p.layer.icmp_error("frag_needed", p.local, p.peer, quoted, p.now, mtu=1000)
    assert p.counters["tcp.pmtu_updates"] == 1
    p.inject(".", theirs, ours, sport=sport, dport=dport)
    assert child.state == "ESTABLISHED"
    assert child.stats()["snd_mss"] == 960 and child.stats()["cwnd"] == 4 * 960
    # A second child, closed with the host (close_all) while in SYN_RECEIVED: it queues
    # its FIN (RFC 9293 §3.10.4) and leaves FIN_WAIT_1 normally once acknowledged.
    p.inject("S", 5000, sport=40001, dport=dport, options=tcpw.encode_options(mss=1460))
    second = next(c for c in p.layer.connections() if c.rport == 40001)
    p.layer.close_all()
    assert second.state == "FIN_WAIT_1"


def test_ack_to_listener_is_reset():
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(2)
    p.inject(".", 5, 777)
    assert p.take()[0].flags == "R" and p.take() == []


# ---------------------------------------------------------------------- opens and closes
def test_simultaneous_open_transfers_data():
    w = Wire(seed=5)
    a, b = w.pair()
    x, y = a.socket(), b.socket()
    x.bind((A_IP, 5000))
    y.bind((B_IP, 6000))
    x.connect((B_IP, 6000))
    y.connect((A_IP, 5000))
    w.run_until(lambda: x.state == y.state == "ESTABLISHED")
    for h in (a, b):
        assert [(e["old"], e["new"]) for e in h.log.filter("state")][:3] == [
            ("CLOSED", "SYN_SENT"), ("SYN_SENT", "SYN_RECEIVED"), ("SYN_RECEIVED", "ESTABLISHED")]
    assert len(w.segs(None, "S")) == 4            # two SYNs, two SYN,ACKs
    assert pump(w, x, y, b"ping" * 1000) == b"ping" * 1000


def test_simultaneous_close():
    w = Wire(seed=6)
    a, b = w.pair(FAST)
    c, s, _ = connect_pair(w, a, b)
    c.shutdown_write()
    s.shutdown_write()
    w.run_until(lambda: c.state == s.state == "TIME_WAIT")
    for h in (a, b):
        path = [e["new"] for e in h.log.filter("state")][-3:]
        assert path == ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    w.run_until(lambda: a.tcp.connection_count() == b.tcp.connection_count() == 0)


def test_half_close_peer_keeps_sending():
    w = Wire(seed=7)
    a, b = w.pair(FAST)
    c, s, _ = connect_pair(w, a, b)
    c.send(b"request")
    c.shutdown_write()                              # client: no more to say
    w.run_until(lambda: s.state == "CLOSE_WAIT")
    assert s.recv(100) == b"request" and s.recv(100) == b""
    w.run_until(lambda: c.state == "FIN_WAIT_2")
    with pytest.raises(BrokenPipeError):
        c.send(b"more")
    reply = bytes(range(256)) * 400
    got = pump(w, s, c, reply)                      # server answers, then closes
    assert got == reply
    w.run_until(lambda: c.state == "TIME_WAIT" and s.state == "CLOSED")


def test_passive_close_takes_three_segments_when_the_application_closes_on_eof():
    """The peer's FIN is not acknowledged alone when our application answers it: the FIN
    we send on its close carries the ACK (as Linux's does), so the close is FIN / FIN,ACK /
    ACK on the wire."""
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    p.take()
    p.inject("F.", theirs, ours)
    assert s.state == "CLOSE_WAIT"
    assert p.take() == []                           # no ACK of its own
    assert s.recv(10) == b""
    s.close()
    p.poll()
    out = p.take()
    assert [(x.flags, x.seq, x.ack) for x in out] == [("F.", ours, theirs + 1)]
    assert s.state == "LAST_ACK"
    p.inject(".", theirs + 1, ours + 1)
    assert p.layer.connection_count() == 0
    assert p.counters["tcp.delayed_acks"] == 0


def test_fin_nobody_answers_is_acknowledged_at_the_delayed_ack_timeout():
    """Half-close: the application neither writes nor closes -- the ACK of the FIN still
    leaves within the delayed-ACK timeout (RFC 1122 4.2.3.2), and a FIN retransmitted
    before then is acknowledged at once."""
    cfg = TcpConfig()
    p = RawPeer(cfg)
    _, s, theirs, ours = p.passive()
    p.take()
    p.inject("F.", theirs, ours)
    p.advance(cfg.delack_ms * MS - 1)
    assert p.take() == []
    p.advance(1)
    out = p.take()
    assert [(x.flags, x.seq, x.ack) for x in out] == [(".", ours, theirs + 1)]
    assert p.counters["tcp.delayed_acks"] == 1
    p.inject("F.", theirs, ours)                    # our ACK was lost: the FIN again
    out = p.take()
    assert [(x.flags, x.ack) for x in out] == [(".", theirs + 1)]
    assert s.state == "CLOSE_WAIT"


def test_fin_is_acknowledged_at_once_without_delayed_acks():
    p = RawPeer(TcpConfig(delayed_ack=False))
    _, s, theirs, ours = p.passive()
    p.take()
    p.inject("F.", theirs, ours)
    out = p.take()
    assert [(x.flags, x.seq, x.ack) for x in out] == [(".", ours, theirs + 1)]
    assert s.state == "CLOSE_WAIT"


def test_close_with_unread_data_sends_rst():
    w = Wire(seed=8)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    c.send(b"unread")
    w.run_until(lambda: s.readable == 6)
    s.close()
    w.run_until(lambda: c.error is not None)
    assert isinstance(c.error, ConnectionResetError)
    assert b.counters["tcp.close_unread_rst"] == 1
    assert a.tcp.connection_count() == b.tcp.connection_count() == 0


def test_data_after_close_is_answered_with_rst():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.close()
    p.poll()
    fin = p.take()[-1]
    assert fin.has("F")
    p.inject(".", theirs, ours + 1, data=b"late")
    assert p.take()[0].has("R")
    assert p.layer.connection_count() == 0
    assert p.counters["tcp.in_data_after_close"] == 1


def test_close_in_syn_sent_deletes_tcb():
    p = RawPeer()
    s = p.socket()
    s.connect((B_IP, 80))
    s.close()
    p.poll()
    assert p.layer.connection_count() == 0 and p.take() == []


def test_abort_sends_rst():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.abort()
    out = p.take()
    assert out[0].flags == "R" and out[0].seq == ours
    assert p.layer.connection_count() == 0


def test_time_wait_lasts_two_msl_then_gone():
    w = Wire(seed=9)
    cfg = TcpConfig(msl=5 * SEC)
    a, b = w.pair(cfg)
    c, s, _ = connect_pair(w, a, b)
    c.close()
    w.run_until(lambda: s.state == "CLOSE_WAIT")
    s.close()
    w.run_until(lambda: c.stats()["state"] == "TIME_WAIT")
    t0 = [e for e in a.log.filter("state") if e["new"] == "TIME_WAIT"][0]["t"]
    w.run_until(lambda: a.tcp.connection_count() == 0)
    t1 = [e for e in a.log.filter("state") if e["old"] == "TIME_WAIT"][0]["t"]
    assert t1 - t0 == 10 * SEC


def test_time_wait_acks_retransmitted_fin_and_restarts():
    p = RawPeer(TcpConfig(msl=1 * SEC))
    _, s, theirs, ours = p.passive()
    s.shutdown_write()
    p.poll()
    p.take()
    p.inject("F.", theirs, ours + 1)
    assert s.state == "TIME_WAIT"
    p.take()
    p.advance(1500 * MS)
    p.inject("F.", theirs, ours + 1)               # our final ACK was lost
    out = p.take()
    assert out[0].flags == "." and out[0].ack == theirs + 1
    p.advance(1900 * MS)
    assert s.state == "TIME_WAIT"                   # restarted at 1.5 s: ends at 3.5 s
    p.advance(200 * MS)
    assert p.layer.connection_count() == 0


def test_thousand_sequential_connections_leave_nothing():
    w = Wire(seed=10, log=False, keep_trace=False)
    a, b = w.pair(TcpConfig(msl=2 * SEC))
    lst = b.socket()
    lst.bind(("0.0.0.0", 7))
    lst.listen(8)
    for i in range(1000):
        c = a.socket()
        c.connect((B_IP, 7))
        box = {}

        def up():
            if box.get("s") is None:
                box["s"] = lst.accept()
            return box["s"] is not None and c.state == "ESTABLISHED"

        w.run_until(up)
        s = box["s"]
        c.send(b"%d" % i)
        c.close()
        w.run_until(lambda: s.state == "CLOSE_WAIT")
        assert s.recv(10) == b"%d" % i
        s.close()
    lst.close()
    w.run_until(lambda: a.tcp.connection_count() == 0 and b.tcp.connection_count() == 0,
                timeout=10 * SEC)
    assert a.tcp.poll_at() is None or a.tcp.poll_at() <= w.now


def test_states_are_a_strenum_equal_to_their_names():
    from enum import StrEnum

    from wirestack.tcp.states import State
    assert issubclass(State, StrEnum) and set(TRANSITIONS) == set(State)
    p = RawPeer()
    _, s, _, _ = p.passive()
    assert s.state is State.ESTABLISHED and s.state == "ESTABLISHED"
    assert f"{s.state}" == "ESTABLISHED" and s.stats()["state"] == "ESTABLISHED"
