"""The socket API and the layer's bookkeeping: misuse errors, ports, backlog, events,
stats, malformed input, ICMP errors."""

import errno
import random

import pytest

from tcp_harness import A_IP, B_IP, RawPeer, Wire, connect_pair, pump
from wirestack.tcp import TcpConfig, TcpLayer
from wirestack.trace.counters import Counters
from wirestack.units import SEC
from wirestack.wire import tcp as tcpw


def test_misuse_raises_socket_style_errors():
    p = RawPeer()
    s = p.socket()
    with pytest.raises(OSError) as e:
        s.send(b"x")
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        s.recv(1)
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        s.accept()
    assert e.value.errno == errno.EINVAL
    s.connect((B_IP, 80))
    with pytest.raises(OSError) as e:
        s.connect((B_IP, 80))
    assert e.value.errno == errno.EISCONN
    with pytest.raises(OSError) as e:
        s.listen(1)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        s.bind(("0.0.0.0", 1234))
    assert e.value.errno == errno.EINVAL
    with pytest.raises(BlockingIOError):
        s.recv(1)
    s.close()
    with pytest.raises(OSError) as e:
        s.send(b"x")
    assert e.value.errno == errno.EBADF
    with pytest.raises(OSError):
        p.socket().connect(("not an ip", 80))
    with pytest.raises(TypeError):
        p.socket(no_such_option=1)
    with pytest.raises(ValueError):
        p.socket(congestion_control="bbr9")


def test_bind_conflicts():
    p = RawPeer()
    a = p.socket()
    a.bind(("0.0.0.0", 80))
    b = p.socket()
    with pytest.raises(OSError) as e:
        b.bind(("0.0.0.0", 80))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        b.bind((A_IP, 80))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        b.bind(("10.9.9.9", 81))
    assert e.value.errno == errno.EADDRNOTAVAIL
    a.close()
    b.bind(("0.0.0.0", 80))                       # free again after close
    c = p.socket()
    c.bind(("0.0.0.0", 0))
    assert 49152 <= c.local[1] <= 65535


def test_ephemeral_ports_random_start_and_skip_used_tuples():
    ports = set()
    for seed in range(5):
        p = RawPeer(seed=seed)
        s = p.socket()
        s.connect((B_IP, 80))
        ports.add(s.local[1])
        assert 49152 <= s.local[1] <= 65535
    assert len(ports) == 5
    p = RawPeer(TcpConfig(ephemeral_ports=(50000, 50002)))
    socks = []
    for _ in range(3):
        s = p.socket()
        s.connect((B_IP, 80))
        socks.append(s)
    assert sorted(s.local[1] for s in socks) == [50000, 50001, 50002]
    with pytest.raises(OSError) as e:
        p.socket().connect((B_IP, 80))
    assert e.value.errno == errno.EADDRNOTAVAIL
    # the same ports still work towards another destination port
    for s in socks:
        s.close()      # SYN_SENT: gone at once
    assert p.layer.connection_count() == 0


def test_connect_from_bound_port_with_live_tuple_is_refused():
    w = Wire(seed=41)
    a, b = w.pair(TcpConfig(msl=1 * SEC))
    c, s, lst = connect_pair(w, a, b)
    port = c.local[1]
    c.close()
    w.run_until(lambda: s.state == "CLOSE_WAIT")
    s.close()
    w.run_until(lambda: c.stats()["state"] == "TIME_WAIT")
    again = a.socket()
    again.bind((A_IP, port))
    with pytest.raises(OSError) as e:
        again.connect((B_IP, 80))              # the 4-tuple is in TIME_WAIT
    assert e.value.errno == errno.EADDRINUSE


def test_listen_backlog_overflow_is_counted():
    p = RawPeer(TcpConfig(syn_cookies=False))
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(2)
    for i in range(5):
        p.inject("S", 1000 * i, sport=40000 + i)
    assert p.counters["tcp.listen_overflow"] == 3
    assert len([x for x in p.take() if x.has("S.")]) == 2
    assert p.layer.connection_count() == 2


def test_listen_backlog_full_answers_with_syn_cookies():
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(2)
    for i in range(5):
        p.inject("S", 1000 * i, sport=40000 + i)
    assert p.counters["tcp.listen_overflow"] == 0
    assert p.counters["tcp.syncookies_sent"] == 3
    assert len([x for x in p.take() if x.has("S.")]) == 5     # every SYN answered...
    assert p.layer.connection_count() == 2                    # ...but only 2 TCBs


def test_accept_queue_and_listener_close_resets_pending():
    p = RawPeer()
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(4)
    events = []
    lst.on_event = lambda: events.append(1)
    p.inject("S", 100, sport=40001)
    syn = p.take()[0]
    p.inject(".", 101, syn.seq + 1, sport=40001)
    assert events == [1]                          # one notification for the new connection
    p.inject("S", 500, sport=40002)               # half-open
    p.take()
    lst.close()
    rsts = [x for x in p.take() if x.has("R")]
    assert len(rsts) == 2
    assert p.layer.connection_count() == 0
    p.inject("S", 900, sport=40003)               # no listener now: RST
    assert p.take()[0].has("R.")


def test_on_event_once_per_poll_batch():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    calls = []
    s.on_event = lambda: calls.append(p.now)
    layer = p.layer
    for i in range(5):                            # five segments, then one poll
        raw = tcpw.build(p.peer, p.local, 40000, 80, theirs + 10 * i, ours, tcpw.ACK, 65535,
                         bytes(10))
        layer.input(p.peer, p.local, memoryview(raw), p.now)
    assert calls == [] and layer.poll_at() == p.now
    layer.poll(p.now)
    assert len(calls) == 1
    assert s.recv(100) == bytes(50)


def test_stats_fields():
    w = Wire(seed=42)
    a, b = w.pair()
    c, s, _ = connect_pair(w, a, b)
    pump(w, c, s, bytes(10_000))
    st = c.stats()
    for k in ("segments_in", "segments_out", "bytes_in", "bytes_out", "retransmits",
              "dup_acks", "rtt_samples", "srtt", "rttvar", "rto", "cwnd", "ssthresh"):
        assert k in st
    assert st["bytes_out"] == 10_000 and s.stats()["bytes_in"] == 10_000
    assert c.local == (A_IP, c.local[1]) and c.remote == (B_IP, 80)
    assert s.local == (B_IP, 80) and s.remote == (A_IP, c.local[1])


def test_malformed_segments_are_counted_never_raise():
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    layer = p.layer
    good = tcpw.build(p.peer, p.local, 40000, 80, theirs, ours, tcpw.ACK, 65535, b"data")
    bad_csum = bytearray(good)
    bad_csum[-1] ^= 0xFF
    layer.input(p.peer, p.local, memoryview(bytes(bad_csum)), 0)
    layer.input(p.peer, p.local, memoryview(good[:12]), 0)
    short_off = bytearray(good)
    short_off[12] = 0x40                          # data offset 16 bytes
    layer.input(p.peer, p.local, memoryview(bytes(short_off)), 0)
    bad_opt = tcpw.build(p.peer, p.local, 40000, 80, theirs, ours, tcpw.ACK, 65535, b"",
                         options=b"\x02\x09\x00\x00")
    layer.input(p.peer, p.local, memoryview(bad_opt), 0)
    c = p.counters
    assert c["tcp.in_csum_errors"] == 1 and c["tcp.in_hdr_errors"] == 2
    assert c["tcp.in_bad_options"] == 1
    assert s.state == "ESTABLISHED" and s.readable == 0
    rng = random.Random(5)                        # and random garbage
    for _ in range(2000):
        n = rng.randrange(0, 80)
        junk = bytearray(rng.randbytes(n))
        if n >= 20 and rng.random() < 0.5:
            junk[12] = (rng.randrange(5, 16) << 4)
        layer.input(p.peer, p.local, memoryview(bytes(junk)), 0)
    layer.poll(0)


def test_fuzzed_valid_checksum_segments_never_raise():
    p = RawPeer(TcpConfig(verify_checksum=False))
    _, s, theirs, ours = p.passive()
    rng = random.Random(9)
    for _ in range(3000):
        flags = rng.randrange(256)
        seq = theirs + rng.randrange(-70000, 70000)
        ack = ours + rng.randrange(-70000, 70000)
        opts = rng.choice([b"", tcpw.encode_options(mss=rng.randrange(0, 65536)),
                           tcpw.encode_options(ts=(rng.getrandbits(32), rng.getrandbits(32))),
                           tcpw.encode_options(wscale=rng.randrange(256))])
        raw = tcpw.build(p.peer, p.local, 40000, rng.choice([80, 81]), seq & 0xFFFFFFFF,
                         ack & 0xFFFFFFFF, flags, rng.randrange(65536), rng.randbytes(rng.randrange(50)),
                         opts)
        p.layer.input(p.peer, p.local, memoryview(raw), p.now)
        p.now += rng.randrange(0, 3 * SEC)
        p.layer.poll(p.now)


def test_icmp_port_unreachable_refuses_connect_and_frag_needed_lowers_mss():
    p = RawPeer()
    s = p.socket()
    s.connect((B_IP, 80))
    p.poll()
    syn = p.take()[0]
    p.layer.icmp_error((3, 3, 0), p.local, p.peer, syn.raw[:8], p.now)
    assert isinstance(s.error, ConnectionRefusedError)

    p = RawPeer()
    _, s, theirs, ours = p.passive()
    s.send(bytes(3000))
    p.poll()
    first = [x for x in p.take() if x.data]
    p.layer.icmp_error((3, 4, 1000), p.local, p.peer, first[0].raw[:8], p.now)
    out = [x for x in p.take() if x.data]
    assert out and len(out[0].data) == 960 and out[0].seq == ours
    assert s.stats()["snd_mss"] == 960
    # a quoted sequence number outside the window is ignored (RFC 5927)
    p.layer.icmp_error((3, 4, 600), p.local, p.peer,
                       first[0].raw[:4] + (ours + 999999).to_bytes(4, "big"), p.now)
    assert s.stats()["snd_mss"] == 960


def test_layers_are_independent_values():
    outs = []
    mk = lambda: TcpLayer(name="x", counters=Counters(), rng=random.Random(1),
                          ip_output=lambda *a: outs.append(a), route_source=lambda d: b"\1\1\1\1",
                          mtu_for=lambda d: 1500)
    l1, l2 = mk(), mk()
    s = l1.socket()
    s.bind(("0.0.0.0", 80))
    l2.socket().bind(("0.0.0.0", 80))             # no shared port table
    assert l1.connection_count() == l2.connection_count() == 0


def test_send_buffer_full_returns_zero_then_drains():
    w = Wire(seed=43)
    a, b = w.pair(TcpConfig(sndbuf=10_000))
    c, s, _ = connect_pair(w, a, b)
    writable = []
    c.on_event = lambda: writable.append(c.writable)
    assert c.send(bytes(20_000)) == 10_000
    assert c.send(b"x") == 0
    w.run(duration=1 * SEC)
    assert c.writable == 10_000 and writable and max(writable) == 10_000


def test_host_wide_options_are_refused_per_socket():
    # Checksums are verified before a segment is matched to a socket: a per-socket switch
    # could never act, so asking for one is an error instead of a silent no-op.
    p = RawPeer()
    with pytest.raises(TypeError, match="host-wide"):
        p.layer.socket(verify_checksum=False)
    p.layer.socket(nodelay=True)  # a socket option proper is fine


def test_socket_calls_act_at_the_time_given():
    """connect/listen/close take the time they act at: the state changes in the event log
    and the SYN's timestamp carry it, not the time of the layer's last input or poll."""
    p = RawPeer()
    p.poll()                                   # the layer last saw t = 0
    t = 7 * SEC
    p.now = t
    lst = p.socket()
    lst.bind(("0.0.0.0", 80))
    lst.listen(8, now=t)
    c = p.socket()
    c.connect((p.peer_str, 5555), now=t)
    assert [(e["t"], e["new"]) for e in p.log.filter("state")] == [(t, "LISTEN"), (t, "SYN_SENT")]
    lst.close(now=t + 1)
    assert [(e["t"], e["new"]) for e in p.log.filter("state")][-1] == (t + 1, "CLOSED")


def _recv_outcome(s):
    """What recv() does now: the bytes, or the exception's type."""
    try:
        return s.recv(100)
    except OSError as exc:
        return type(exc)


@pytest.mark.parametrize("then", ["nothing", "data", "data and FIN", "FIN", "RST", "closed"])
def test_recv_ready_says_whether_recv_returns_or_would_block(then):
    p = RawPeer()
    _, s, theirs, ours = p.passive()
    if then.startswith("data"):
        p.inject("P." + ("F" if "FIN" in then else ""), theirs, ours, data=b"hello")
    elif then == "FIN":
        p.inject("F.", theirs, ours)
    elif then == "RST":
        p.inject("R", theirs)
    elif then == "closed":
        s.close()
    ready = s.recv_ready
    got = _recv_outcome(s)
    assert ready == (got is not BlockingIOError), (then, ready, got)
    assert ready == (then != "nothing")
    if then == "data and FIN":      # the data, then the end: still ready, then b""
        assert got == b"hello" and s.recv_ready and s.recv(100) == b""
