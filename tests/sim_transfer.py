"""A test-side helper shared by the capture, ladder and what-if tests: host a sends ``size``
zero bytes over TCP to a sink on host b (at ``dst``), closes, and waits for b's close; then
the simulation runs until nothing is left to do (TIME_WAIT included)."""


def send_to_sink(net, a, b, size: int, dst: str = "198.18.0.2", port: int = 80) -> None:
    async def main():
        async def sink(reader, writer):
            while await reader.read(65536):
                pass
            writer.close()
        await b.start_server(sink, port)
        reader, writer = await a.open_connection(dst, port)
        writer.write(bytes(size))
        writer.write_eof()
        await writer.drain()
        await reader.read()
    net.run(main())
    net.settle()
