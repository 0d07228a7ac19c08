"""apps.ping at the level of its accounting: the 16-bit sequence number, the payload limit,
cancellation (Ctrl-C) still giving the statistics."""

import asyncio
import re

import pytest

from wirestack.apps.ping import MAX_PAYLOAD, ping
from wirestack.runtime.sim import Network


def _net():
    net = Network(seed=1)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=0.5)
    return net, a


def test_replies_across_the_wrap_are_matched_to_their_requests():
    net, a = _net()
    lines = []
    with net:
        result = net.run(ping(a, "198.18.0.2", count=12, interval=0.01, first_seq=65533,
                                on_line=lines.append))
    seqs = [int(s) for s in re.findall(r"icmp_seq=(\d+) ", "\n".join(lines))]
    assert seqs == [65533, 65534, 65535, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert (result.received, result.duplicates) == (12, 0)
    # Each reply matched to its own request (the first also waited for ARP).
    assert all(0.9 < ms < 1.2 for ms in result.rtts_ms[1:])


def test_payload_above_65507_is_refused():
    net, a = _net()
    with net, pytest.raises(ValueError, match="65507"):
        net.run(ping(a, "198.18.0.2", count=1, size=MAX_PAYLOAD + 1))


def test_cancelling_a_ping_prints_the_statistics_and_returns_the_result():
    net, a = _net()
    lines = []

    async def main():
        task = asyncio.ensure_future(ping(a, "198.18.0.2", count=1000, interval=1.0,
                                            on_line=lines.append))
        await asyncio.sleep(3.5)
        task.cancel()
        return await task

    with net:
        result = net.run(main())
    assert result.interrupted and result.transmitted == 4 and result.received == 4
    assert lines[-3:-1] == ["--- 198.18.0.2 ping statistics ---",
                            "4 packets transmitted, 4 received, 0% packet loss, time 3001ms"]
