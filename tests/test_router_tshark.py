"""Wireshark as the judge of what routers put on the wire: time exceeded, port and net
unreachable, fragmentation-needed with its MTU, fragments cut at a hop, forwarded TCP."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from test_tshark import problems, tshark
from wirestack.apps.traceroute import traceroute
from wirestack.runtime.sim import Network

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def test_router_traffic_decodes_with_good_checksums(tmp_path):
    net = Network(seed=9)
    a, (r1, r2), b = net.chain(2, mtu=[1500, 576, 1500], delay_ms=1)
    first, middle = tmp_path / "first.pcap", tmp_path / "middle.pcap"
    net.capture(first, net.media[0])
    net.capture(middle, net.media[1])

    async def main():
        await traceroute(a, "198.18.2.2", wait=1)
        tr, _ = await a.create_datagram_endpoint(asyncio.DatagramProtocol)
        tr.sendto(bytes(1400), ("198.18.2.2", 9))           # no DF: cut at r1
        tr.sendto(b"x", ("198.19.0.1", 9))                   # no route at r2: net unreachable

        async def sink(reader, writer):
            await reader.read()
            writer.close()

        await b.start_server(sink, 80)
        _, writer = await a.open_connection("198.18.2.2", 80)
        writer.write(bytes(20_000))                          # DF: frag-needed, then smaller
        writer.write_eof()
        await asyncio.sleep(2)

    net.run(main())
    net.close()
    for path in (first, middle):
        assert problems(tshark(path)) == [], path
    fields = subprocess.run(["tshark", "-n", "-r", str(first), "-Y", "icmp.type == 3 || icmp.type == 11",
                             "-T", "fields", "-e", "icmp.type", "-e", "icmp.code", "-e", "icmp.mtu"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    kinds = {tuple(line.split("\t")) for line in fields if line}
    assert ("11", "0", "") in kinds and ("3", "3", "") in kinds and ("3", "0", "") in kinds
    assert ("3", "4", "576") in kinds
    frags = subprocess.run(["tshark", "-n", "-r", str(middle), "-Y", "ip.flags.mf == 1",
                            "-T", "fields", "-e", "ip.len"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert frags and all(int(n) <= 576 for n in frags)
