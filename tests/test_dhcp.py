"""DHCPv4 (RFC 2131/2132): codec, server pool, client states, retransmission with backoff,
renewal, expiry and NAK, on the simulated wire."""

import asyncio
import random

import pytest

from wirestack.apps.ping import ping
from wirestack.apps.dhcp import DhcpClient, DhcpServer, dhcp_client, serve_dhcp
from wirestack.runtime.sim import Network
from wirestack.units import SEC
from wirestack.wire import MalformedPacket, dhcp, ip_aton, parse_frame

MAC = b"\x02\0\0\0\0\x42"


def test_codec_round_trip_and_bootp_size():
    msg = dhcp.DhcpMessage(dhcp.BOOTREQUEST, 0x1234ABCD, MAC, flags=dhcp.FLAG_BROADCAST,
                           options={dhcp.OPT_MESSAGE_TYPE: b"\x01", dhcp.OPT_HOSTNAME: b"x" * 300})
    data = dhcp.build(msg)
    assert len(data) >= 300 and data[236:240] == dhcp.MAGIC and data[240:243] == b"\x35\x01\x01"
    back = dhcp.parse(data)
    assert (back.type, back.xid, back.chaddr, back.flags) == (dhcp.DISCOVER, 0x1234ABCD, MAC, 0x8000)
    assert back.options[dhcp.OPT_HOSTNAME] == b"x" * 300       # split and joined (RFC 3396)


@pytest.mark.parametrize("cut", [0, 100, 239, 243])
def test_codec_rejects_truncated_messages(cut):
    data = dhcp.build(dhcp.DhcpMessage(dhcp.BOOTREQUEST, 1, MAC, options={dhcp.OPT_MESSAGE_TYPE: b"\x01",
                                                                          dhcp.OPT_HOSTNAME: b"abc"}))
    data = data[:cut] if cut < 243 else data[:241] + b"\x0c\x09ab"    # an option overrunning the end
    with pytest.raises(MalformedPacket) as exc:
        dhcp.parse(data)
    assert exc.value.counter == "dhcp.in_malformed"


def test_server_offers_acks_and_runs_out():
    srv = DhcpServer("198.18.5.1/24", ("198.18.5.10", "198.18.5.11"), router="198.18.5.1", lease_time=100)
    rng = random.Random(1)
    got = []
    for n in range(3):
        c = DhcpClient(bytes([2, 0, 0, 0, 0, n]), rng)
        c.start(0)
        for _, req in c.poll(0):
            for _, reply in srv.handle(req, 0):
                c.receive(reply, 0)
        for _, req in c.poll(0):
            for dst, reply in srv.handle(req, 0):
                assert dst == b"\xff\xff\xff\xff"
                c.receive(reply, 0)
        got.append(c.lease and c.lease.address)
    assert got == ["198.18.5.10/24", "198.18.5.11/24", None]
    assert [ip for ip, _, _ in srv.leases(0)] == ["198.18.5.10", "198.18.5.11"]


def _net(loss=0.0, lease_time=60):
    net = Network(seed=3)
    srv = net.host("srv", "198.18.5.1/24")
    c = net.host("c")
    c.add_interface(None)
    link = net.link(srv, c, delay_ms=1, loss=loss)
    frames = []
    link.add_tap(lambda now, frame: frames.append((now, parse_frame(frame))))
    return net, srv, c, frames


def _dhcp(frames, type_=None):
    out = []
    for t, f in frames:
        if f.udp and f.udp.dport in (67, 68):
            m = dhcp.parse(f.payload)
            if type_ is None or m.type == type_:
                out.append((t, f, m))
    return out


def test_client_binds_and_configures_address_route_and_resolver():
    net, srv, c, frames = _net()

    async def main():
        serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.50", "198.18.5.60"), router="198.18.5.1",
                   dns=["198.18.5.53"], lease_time=3600)
        svc = await dhcp_client(c, timeout=30)
        result = await ping(c, "198.18.5.1", count=1)
        svc.close()
        await asyncio.sleep(0)
        return svc.lease, result

    lease, echo = net.run(main())
    assert lease.address == "198.18.5.50/24" and lease.router == "198.18.5.1"
    assert c.host.addresses == ["198.18.5.50"] and c.host.dns_servers == ["198.18.5.53"]
    assert c.host.route_lines() == ["default via 198.18.5.1 dev eth0",
                                    "198.18.5.0/24 dev eth0 proto kernel scope link src 198.18.5.50"]
    assert echo.received == 1
    kinds = [m.type for _, _, m in _dhcp(frames)]
    assert kinds == [dhcp.DISCOVER, dhcp.OFFER, dhcp.REQUEST, dhcp.ACK]
    _, f, discover = _dhcp(frames, dhcp.DISCOVER)[0]
    assert f.ip.src == b"\0\0\0\0" and f.ip.dst == b"\xff\xff\xff\xff" and f.eth.dst == b"\xff" * 6
    assert discover.flags == dhcp.FLAG_BROADCAST


def test_discover_is_retransmitted_with_exponential_backoff():
    net, srv, c, frames = _net()

    async def main():
        task = asyncio.ensure_future(dhcp_client(c, timeout=120))
        await asyncio.sleep(40)               # nobody answers for 40 s
        serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.50", "198.18.5.60"))
        return await task

    svc = net.run(main())
    svc.close()
    net.run(asyncio.sleep(0))
    times = [t / SEC for t, _, _ in _dhcp(frames, dhcp.DISCOVER)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # RFC 2131 §4.1: 4, 8, 16, 32 ... seconds, each within ±1 s.
    for gap, base in zip(gaps, (4, 8, 16, 32)):
        assert base - 1 <= gap <= base + 1, gaps
    assert svc.lease is not None and c.host.addresses == ["198.18.5.50"]


def test_renewal_unicast_at_t1_then_expiry_without_server():
    net, srv, c, frames = _net()

    async def main():
        server = serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.50", "198.18.5.60"), lease_time=60)
        svc = await dhcp_client(c, timeout=30)
        await asyncio.sleep(40)
        renewed = svc.lease.obtained
        server.close()                            # the server goes away
        await asyncio.sleep(55)                   # past the end of the lease (t = 30 + 60)
        addresses = list(c.host.addresses)
        svc.close()
        await asyncio.sleep(0)
        return renewed, addresses

    renewed, addresses = net.run(main())
    requests = _dhcp(frames, dhcp.REQUEST)
    t, f, renew = requests[1]
    assert 29.9 < t / SEC < 30.1 and renewed > 29 * SEC           # T1 = lease / 2
    assert f.ip.dst == ip_aton("198.18.5.1") and renew.ciaddr == ip_aton("198.18.5.50")
    assert dhcp.OPT_SERVER_ID not in renew.options                 # RFC 2131 §4.3.2 RENEWING
    # Then RENEWING (unicast) until T2, REBINDING (broadcast) until the lease ends.
    later = [(t / SEC, f.ip.dst) for t, f, _ in requests[2:]]
    assert any(dst == b"\xff\xff\xff\xff" and 82 < t < 83 for t, dst in later), later  # 30 + 52.5
    assert addresses == ["0.0.0.0"]
    assert c.host.routes.lookup(ip_aton("198.18.5.1")) is None
    assert [e["kind"] for e in c.log.filter() if e["kind"].startswith("dhcp")][:3] == [
        "dhcp_bound", "dhcp_renewed", "dhcp_expired"]


def test_server_that_forgot_the_lease_naks_the_renewal_and_the_client_starts_over():
    net, srv, c, frames = _net()

    async def main():
        server = serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.50", "198.18.5.60"), lease_time=60)
        svc = await dhcp_client(c, timeout=30)
        server.close()
        serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.70", "198.18.5.80"), lease_time=60)
        await asyncio.sleep(35)
        svc.close()
        await asyncio.sleep(0)
        return svc.lease

    lease = net.run(main())
    assert len(_dhcp(frames, dhcp.NAK)) == 1
    assert lease.address == "198.18.5.70/24" and c.host.addresses == ["198.18.5.70"]
    assert c.counters["dhcp.in_nak"] == 1


def test_client_gets_through_a_lossy_link():
    net, srv, c, frames = _net(loss=0.3)

    async def main():
        serve_dhcp(srv, "198.18.5.1/24", ("198.18.5.50", "198.18.5.60"))
        svc = await dhcp_client(c, timeout=300)
        svc.close()
        await asyncio.sleep(0)
        return svc.lease

    assert net.run(main()).address == "198.18.5.50/24"
    assert c.counters["dhcp.out_discover"] + c.counters["dhcp.out_request"] > 2


def test_cli_dhcp_on_the_simulated_wire_shows_the_exchange(capsys):
    from wirestack.cli import main
    assert main(["dhcp", "--loss", "0.3", "--seed", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in out[:-3]] == ["DHCPDISCOVER", "DHCPOFFER", "DHCPDISCOVER",
                                                      "DHCPOFFER", "DHCPREQUEST", "DHCPACK"]
    assert out[-3:] == ["bound to 198.18.5.50/24 from 198.18.5.1, lease 3600 s", "router 198.18.5.1",
                        "dns 198.18.5.1"]


def test_readme_dhcp_dns_example_works_as_written(capsys):
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"### Addresses by DHCP, names by DNS\n\n```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out, err = capsys.readouterr()
    assert out == "198.18.5.50/24 ['198.18.5.1']\n3600.012\n" and err == ""
