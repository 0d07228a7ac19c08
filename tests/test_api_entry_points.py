"""The names a newcomer reaches for first: ``from wirestack import Network`` and
``start_server`` called the way ``asyncio.start_server`` is."""

from __future__ import annotations

import subprocess
import sys

import pytest

A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def test_network_from_the_package_root_is_the_simulation_network():
    from wirestack import Network
    from wirestack.runtime import sim

    assert Network is sim.Network
    with pytest.raises(AttributeError):
        import wirestack
        wirestack.NoSuchThing  # noqa: B018


def test_importing_the_package_does_not_load_the_runtime():
    # `import wirestack.wire` (a codec user) must not pay for asyncio and every layer.
    code = ("import sys, wirestack, wirestack.wire; "
            "print('wirestack.runtime.sim' in sys.modules, 'asyncio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("args, kwargs, bound", [
    ((B_IP, 7), {}, (B_IP, 7)),                       # asyncio's order: host, port
    ((), {"host": B_IP, "port": 7}, (B_IP, 7)),
    ((None, 7), {}, ("0.0.0.0", 7)),                  # None: every local address
    (("", 7), {}, ("0.0.0.0", 7)),
    ((), {"port": 7}, ("0.0.0.0", 7)),
    ((7,), {}, ("0.0.0.0", 7)),                       # the short form: port only
    ((7, B_IP), {}, (B_IP, 7)),                       # wirestack's first order: port, host
    ((7,), {"backlog": 4, "nodelay": True}, ("0.0.0.0", 7)),
])
def test_start_server_takes_asyncio_argument_order(args, kwargs, bound):
    from wirestack import Network

    net = Network(seed=5)
    a = net.host("a", A_IP + "/24")
    b = net.host("b", B_IP + "/24")
    net.link(a, b, delay_ms=1)

    async def main():
        server = await b.start_server(_echo, *args, **kwargs)
        assert server.sockets[0].local == bound
        reader, writer = await a.open_connection(B_IP, 7)
        writer.write(b"hello, wire")
        writer.write_eof()
        got = await reader.read()
        writer.close()
        server.close()
        return got

    assert net.run(main()) == b"hello, wire"


def test_start_server_port_none_listens_on_an_ephemeral_port():
    from wirestack import Network

    net = Network(seed=6)
    b = net.host("b", B_IP + "/24")

    async def main():
        server = await b.start_server(_echo, B_IP, None)
        port = server.sockets[0].local[1]
        server.close()
        return port

    assert net.run(main()) >= 1024


@pytest.mark.parametrize("args", [(B_IP, "7"), (b"\xc6\x12\x00\x02", 7)])
def test_start_server_rejects_what_asyncio_would_not_take_here(args):
    from wirestack import Network

    net = Network(seed=7)
    b = net.host("b", B_IP + "/24")

    async def main():
        with pytest.raises(TypeError):
            await b.start_server(_echo, *args)

    net.run(main())
