"""DNS (RFC 1035): codec, the authoritative server, and the stub resolver (retries, TCP
fallback on TC) used by open_connection."""

import socket

import pytest

from wirestack.apps.dns import DnsServer, serve_dns
from wirestack.runtime.sim import Network
from wirestack.sim import Fault
from wirestack.wire import MalformedPacket, dns

ZONE = {"www.lab.test": "198.18.6.10", "big.lab.test": [f"198.18.7.{i}" for i in range(1, 41)]}


def test_codec_round_trip_with_compression():
    msg = dns.DnsMessage(0xBEEF, qr=True, aa=True, questions=[("www.lab.test", dns.TYPE_A, 1)],
                         answers=[dns.Record("www.lab.test", dns.TYPE_A, 300, bytes([198, 18, 6, 10]))])
    data = dns.build(msg)
    # The answer's name is a pointer to the question's (RFC 1035 §4.1.4): 0xC00C.
    assert data[12:26] == b"\x03www\x03lab\x04test\x00" and b"\xc0\x0c" in data[30:]
    back = dns.parse(data)
    assert (back.id, back.qr, back.aa, back.questions) == (0xBEEF, True, True, [("www.lab.test", 1, 1)])
    assert [r.address for r in back.answers] == ["198.18.6.10"]


@pytest.mark.parametrize("data", [
    b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",     # pointer to itself
    b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",                      # label past the end
    b"\x00\x01\x01\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",        # 5 questions, 1 present
    b"\x00\x01\x01",                                                                 # header cut
])
def test_codec_rejects_malformed(data):
    with pytest.raises(MalformedPacket) as exc:
        dns.parse(data)
    assert exc.value.counter == "dns.in_malformed"
    assert DnsServer(ZONE).answer(data, udp=True) is None


def test_server_answers_nxdomain_nodata_and_truncates_over_udp():
    srv = DnsServer(ZONE)
    r = dns.parse(srv.answer(dns.query(1, "WWW.Lab.Test."), udp=True))
    assert r.aa and r.rcode == dns.NOERROR and [a.address for a in r.answers] == ["198.18.6.10"]
    assert dns.parse(srv.answer(dns.query(2, "nope.lab.test"), udp=True)).rcode == dns.NXDOMAIN
    r = dns.parse(srv.answer(dns.query(3, "www.lab.test", dns.TYPE_AAAA), udp=True))
    assert r.rcode == dns.NOERROR and r.answers == []
    udp = srv.answer(dns.query(4, "big.lab.test"), udp=True)
    r = dns.parse(udp)
    assert len(udp) <= 512 and r.tc and 0 < len(r.answers) < 40
    assert len(dns.parse(srv.answer(dns.query(4, "big.lab.test"), udp=False)).answers) == 40


def _net(**link):
    net = Network(seed=5)
    a = net.host("a", "198.18.6.1/24")
    ns = net.host("ns", "198.18.6.53/24")
    www = net.host("www", "198.18.6.10/24")
    net.switch(a, ns, www, **link)
    a.host.dns_servers = ["198.18.6.53"]
    return net, a, ns, www


def test_open_connection_by_name():
    net, a, ns, www = _net()

    async def main():
        await serve_dns(ns, ZONE)

        async def hello(reader, writer):
            writer.write(b"hello from www")
            writer.close()

        await www.start_server(hello, 80)
        reader, writer = await a.open_connection("www.lab.test", 80)
        data = await reader.read()
        with pytest.raises(socket.gaierror) as exc:
            await a.open_connection("nope.lab.test", 80)
        return data, exc.value.errno

    data, err = net.run(main())
    assert data == b"hello from www" and err == socket.EAI_NONAME
    assert a.counters["dns.out_queries"] == 2 and ns.counters["dns.out_nxdomain"] == 1


def test_truncated_answer_is_asked_again_over_tcp():
    net, a, ns, www = _net()

    async def main():
        await serve_dns(ns, ZONE)
        return await a.getaddrinfo("big.lab.test")

    addresses = net.run(main())
    assert addresses == [f"198.18.7.{i}" for i in range(1, 41)]
    assert a.counters["dns.tcp_fallbacks"] == 1 and ns.counters["dns.out_truncated"] == 1


def test_lost_queries_are_retried_then_give_up():
    net = Network(seed=5)
    a = net.host("a", "198.18.6.1/24")
    ns = net.host("ns", "198.18.6.53/24")
    link = net.link(a, ns, delay_ms=1)
    link.add_fault(Fault("drop", match=lambda f: f.udp is not None and f.udp.dport == 53, count=2))

    async def main():
        await serve_dns(ns, ZONE)
        t0 = net.now
        got = await a.getaddrinfo("www.lab.test", servers=["198.18.6.53"])
        waited = (net.now - t0) / 1e9
        with pytest.raises(socket.gaierror) as exc:
            await a.getaddrinfo("www.lab.test", servers=["198.18.6.99"])   # nobody there
        return got, waited, exc.value.errno

    got, waited, err = net.run(main())
    assert got == ["198.18.6.10"] and 4.0 <= waited < 4.1        # two 2-second timeouts
    assert a.counters["dns.timeouts"] >= 2 + 3 and err == socket.EAI_AGAIN


def test_cli_dns_on_the_simulated_wire(capsys):
    from wirestack.cli import main
    assert main(["dns", "www.lab.test"]) == 0
    assert capsys.readouterr().out == "www.lab.test has address 198.18.6.10\n"
    assert main(["dns", "www.x.test", "--zone", "www.x.test=198.18.6.7,198.18.6.8"]) == 0
    assert capsys.readouterr().out.splitlines() == ["www.x.test has address 198.18.6.7",
                                                    "www.x.test has address 198.18.6.8"]
    assert main(["dns", "nope.lab.test"]) == 1
    assert "Name or service not known" in capsys.readouterr().err
