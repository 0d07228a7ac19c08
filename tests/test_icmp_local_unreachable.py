"""When ARP gets no answer, the host tells the sockets whose datagrams were waiting, as
Linux does (EHOSTUNREACH for TCP/UDP): a ping socket gets a "Destination Host Unreachable"
report from our own address, one per echo request, which iputils prints as
"From 198.18.0.1 icmp_seq=N Destination Host Unreachable"."""

from wirestack.apps.ping import ping
from wirestack.runtime.sim import Network


def test_failed_arp_reports_host_unreachable_to_the_ping_socket():
    lines = []
    with Network(seed=1) as net:
        a = net.host("a", "198.18.0.1/24")
        b = net.host("b", "198.18.0.2/24")
        net.link(a, b)
        result = net.run(ping(a, "198.18.0.9", count=2, interval=0.5, timeout=5, on_line=lines.append))
        assert a.counters["arp.resolution_failed"] == 1
    assert (result.received, result.errors) == (0, 2)
    assert lines[1:3] == ["From 198.18.0.1 icmp_seq=1 Destination Host Unreachable",
                          "From 198.18.0.1 icmp_seq=2 Destination Host Unreachable"]
