"""A live host under 120,000 random and mutated frames (see host_fuzz.py for what they
are): no exception escapes Host.receive, every table stays bounded, and afterwards the
established connection still carries 4 MB intact. ``make fuzz`` runs 10⁶ frames."""

from host_fuzz import FuzzedHost

FRAMES = 120_000


def test_fuzzed_frames_into_a_live_host():
    fz = FuzzedHost(seed=20261130)
    for _ in range(FRAMES // 10_000):
        fz.run(10_000)              # an exception here fails the test with its traceback
        fz.check_bounds()
    c = fz.a.counters
    assert fz.frames == FRAMES
    # the frames reached every layer, not just the first check
    for name in ("arp.in_requests", "ip.reasm_oks", "ip.reasm_overlap_conflicts",
                 "icmp.in_echos", "udp.in_datagrams", "tcp.in_rst_challenged",
                 "tcp.in_ack_unsent", "tcp.in_syn_challenged", "tcp.passive_opens",
                 "tcp.in_bad_options"):
        assert c[name] > 0, name
    assert fz.server.state == "ESTABLISHED" and fz.server.error is None
    assert fz.transfer(4 * 1024 * 1024)
