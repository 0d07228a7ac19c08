"""`wirestack traceroute`, `arp` and `route` on the simulated wire, as a user runs them."""

from __future__ import annotations

import re

from wirestack.cli import main
from wirestack.trace.pcap import PcapReader
from wirestack.wire import parse_frame

HOP = re.compile(r"^ ?(\d+) ( \*| \S+( \(\S+\))?(  \d+\.\d{3} ms)+)+")


def run_main(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_traceroute_prints_each_router_then_the_destination(capsys, tmp_path):
    pcap = tmp_path / "t.pcap"
    status, out, err = run_main(capsys, ["traceroute", "--routers", "3", "--pcap", str(pcap)])
    lines = out.splitlines()
    assert status == 0, err
    assert lines[0] == "traceroute to 198.18.3.2 (198.18.3.2), 30 hops max, 60 byte packets"
    assert lines[1:] == [
        " 1  198.18.0.2 (198.18.0.2)  4.000 ms  2.000 ms  2.000 ms",
        " 2  198.18.1.2 (198.18.1.2)  6.000 ms  4.000 ms  4.000 ms",
        " 3  198.18.2.2 (198.18.2.2)  8.000 ms  6.000 ms  6.000 ms",
        " 4  198.18.3.2 (198.18.3.2)  10.000 ms  8.000 ms  8.000 ms",
    ]
    frames = [parse_frame(f) for _, f in PcapReader(pcap)]
    probes = [f for f in frames if f.udp and f.ip.src == bytes([198, 18, 0, 1])]
    assert [f.ip.ttl for f in probes] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert [f.udp.dport for f in probes] == list(range(33434, 33446))
    assert sum(1 for f in frames if f.icmp and f.icmp.type == 11) == 9


def test_traceroute_icmp_with_loss_prints_stars_and_is_deterministic(capsys):
    argv = ["traceroute", "-I", "-n", "--routers", "4", "--loss", "0.2", "--seed", "3", "-w", "1"]
    status, out, _ = run_main(capsys, argv)
    lines = out.splitlines()
    assert "*" in out and all(HOP.match(line) for line in lines[1:]), out
    assert lines[-1].split()[1] == "198.18.4.2" and status == 0
    assert run_main(capsys, argv)[1] == out


def test_traceroute_silent_router(capsys):
    status, out, _ = run_main(capsys, ["traceroute", "--silent", "2", "-q", "2", "-w", "1"])
    assert out.splitlines()[2] == " 2  * *" and status == 0


def test_arp_resolves_and_prints_like_ip_neigh(capsys):
    status, out, _ = run_main(capsys, ["arp", "198.18.0.2"])
    assert status == 0
    assert re.fullmatch(r"198\.18\.0\.2 dev eth0 lladdr 02(:[0-9a-f]{2}){5} REACHABLE\n", out)
    status, out, err = run_main(capsys, ["arp", "198.18.0.9"])
    assert status == 1 and out == "198.18.0.9 dev eth0 FAILED\n"
    assert "no answer after 3 requests" in err


def test_route_prints_like_ip_route(capsys):
    status, out, _ = run_main(capsys, ["route", "--host", "r2"])
    assert status == 0 and out.splitlines() == [
        "default via 198.18.2.2 dev eth1",
        "198.18.0.0/24 via 198.18.1.1 dev eth0",
        "198.18.1.0/24 dev eth0 proto kernel scope link src 198.18.1.2",
        "198.18.2.0/24 dev eth1 proto kernel scope link src 198.18.2.1",
    ]
    assert run_main(capsys, ["route", "get", "198.18.3.2"])[1] == "198.18.3.2 via 198.18.0.2 dev eth0 src 198.18.0.1\n"
    status, _, err = run_main(capsys, ["route", "--host", "r3", "get", "198.19.0.1"])
    assert status == 1 and "Network is unreachable" in err
