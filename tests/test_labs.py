"""Each lab must show the failure its switched-off mechanism prevents."""


from wirestack.cli import main
from wirestack.labs.experiments import LABS


def runs(name, seed=1):
    return dict(LABS[name].runs(seed))


def test_checksums_lab():
    r = runs("checksums")
    nic, tcp_sum, none = r.values()
    assert nic.sha256_ok and nic.counters["b"]["eth.rx_fcs_errors"] > 0
    assert tcp_sum.sha256_ok and tcp_sum.counters["b"].get("eth.rx_fcs_errors", 0) == 0
    assert sum(tcp_sum.counters[h].get("tcp.in_csum_errors", 0) for h in "ab") > 0
    assert not none.sha256_ok  # corrupted data delivered, or the connection derailed


def test_retransmission_lab():
    on, off = runs("retransmission").values()
    assert on.sha256_ok
    assert not off.completed and "stalled" in off.error


def test_fast_retransmit_lab():
    on, off = runs("fast-retransmit").values()
    assert on.sha256_ok and off.sha256_ok
    assert off.virtual_seconds > 2 * on.virtual_seconds
    assert off.counters["a"].get("tcp.rto_timeouts", 0) > on.counters["a"].get("tcp.rto_timeouts", 0)


def test_congestion_lab():
    reno, none = runs("congestion").values()
    assert reno.sha256_ok and none.sha256_ok
    assert none.decisions.get("queue_overflow", 0) > 5 * reno.decisions.get("queue_overflow", 0)
    assert none.goodput_bps < reno.goodput_bps / 2


def test_nagle_lab():
    on, off = runs("nagle").values()
    assert on.sha256_ok and off.sha256_ok
    assert on.segments_a_to_b * 10 < off.segments_a_to_b


def test_delayed_ack_lab():
    on, off = runs("delayed-ack").values()
    assert on.sha256_ok and off.sha256_ok
    assert on.segments_b_to_a < 0.6 * off.segments_b_to_a


def test_ooo_lab():
    on, off = runs("ooo").values()
    assert on.sha256_ok and off.sha256_ok
    assert off.counters["b"].get("tcp.ofo_dropped", 0) > 0
    assert off.sender["retransmits"] > 2 * on.sender["retransmits"]


def test_lab_cli_lists_and_runs(capsys):
    assert main(["lab"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in LABS)
    assert main(["lab", "nagle"]) == 0
    out = capsys.readouterr().out
    assert "Nagle on" in out and "nodelay" in out


def test_unknown_lab_is_one_line_and_status_2(capsys):
    assert main(["lab", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wirestack lab: error: unknown lab 'nope'")
