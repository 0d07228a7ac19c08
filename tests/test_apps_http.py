"""The tiny HTTP/1.1 server and client over real asyncio TCP on 127.0.0.1 (and curl)."""

import asyncio
import hashlib
import os
import shutil

import pytest

from wirestack.apps.http import http_get, http_get_to_file, http_handler, http_request

BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("<h1>hello</h1>\n")
    (root / "a.txt").write_text("alpha\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.json").write_text('{"b": 1}\n')
    (root / "nolist").mkdir()
    (root / "nolist" / "x y.txt").write_text("spaces\n")
    big = root / "big.bin"
    with open(big, "wb") as f:
        for i in range(BIG // (1024 * 1024)):
            f.write(hashlib.sha256(str(i).encode()).digest() * 32768)
    outside = tmp_path_factory.mktemp("secret")
    (outside / "secret.txt").write_text("do not serve\n")
    os.symlink(outside / "secret.txt", root / "escape.txt")
    return root


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


async def start(root, **kw):
    server = await asyncio.start_server(http_handler(str(root), **kw), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def raw_exchange(port, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def test_keep_alive_two_requests_one_connection(www):
    async def main():
        server, port = await start(www)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            host = f"127.0.0.1:{port}"
            s1, h1, b1 = await http_get(reader, writer, host, "/a.txt")
            s2, h2, b2 = await http_get(reader, writer, host, "/sub/b.json")
            s3, h3, b3 = await http_request(reader, writer, "HEAD", host, "/")
            s4, h4, b4 = await http_get(reader, writer, host, "/", keep_alive=False)
            eof = await reader.read()  # Connection: close honoured
            writer.close()
            return (s1, h1, b1), (s2, h2, b2), (s3, h3, b3), (s4, h4, b4), eof

    r1, r2, r3, r4, eof = run(main())
    assert r1[0] == 200 and r1[2] == b"alpha\n"
    assert r1[1]["content-type"].startswith("text/plain")
    assert r1[1]["content-length"] == "6"
    assert "date" in r1[1] and r1[1]["server"] == "wirestack"
    assert r2[0] == 200 and r2[1]["content-type"] == "application/json"
    assert r3[0] == 200 and r3[2] == b"" and r3[1]["content-length"] == str(len("<h1>hello</h1>\n"))
    assert r4[0] == 200 and r4[2] == b"<h1>hello</h1>\n" and r4[1]["connection"] == "close"
    assert eof == b""


def test_big_file_streamed_to_file(www, tmp_path):
    async def main():
        server, port = await start(www)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            out = tmp_path / "big.out"
            status, headers, n = await http_get_to_file(reader, writer, "x", "/big.bin", str(out))
            # and the connection is still usable afterwards
            s2, _, b2 = await http_get(reader, writer, "x", "/a.txt")
            writer.close()
            return status, headers, n, out, s2, b2

    status, headers, n, out, s2, b2 = run(main())
    assert status == 200 and n == BIG
    assert headers["content-length"] == str(BIG)
    assert headers["content-type"] == "application/octet-stream"
    assert sha(out) == sha(www / "big.bin")
    assert (s2, b2) == (200, b"alpha\n")


def test_errors(www):
    async def main():
        server, port = await start(www)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            nf = await http_get(reader, writer, "x", "/nope.txt")
            writer.close()
            out = {"404": nf}
            for name, req in {
                "post": b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                "badline": b"GARBAGE\r\n\r\n",
                "lower": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
                "v2": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                "nohost": b"GET / HTTP/1.1\r\n\r\n",
                "dotdot": b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                "encoded": b"GET /sub/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                "symlink": b"GET /escape.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                "badheader": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                "http10": b"GET /a.txt HTTP/1.0\r\n\r\n",
                "dir": b"GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "listing": b"GET /nolist/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "huge": b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
            }.items():
                out[name] = await raw_exchange(port, req)
            return out

    out = run(main())
    assert out["404"][0] == 404
    assert out["post"].startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in out["post"]
    assert out["badline"].startswith(b"HTTP/1.1 400 ")
    assert out["lower"].startswith(b"HTTP/1.1 400 ")
    assert out["v2"].startswith(b"HTTP/1.1 505 ")
    assert out["nohost"].startswith(b"HTTP/1.1 400 ")
    for k in ("dotdot", "encoded", "symlink"):
        assert out[k].startswith(b"HTTP/1.1 403 "), k
        assert b"do not serve" not in out[k] and b"root:" not in out[k]
    assert out["badheader"].startswith(b"HTTP/1.1 400 ")
    # HTTP/1.0 without keep-alive: answered, then closed (raw_exchange read to EOF)
    assert out["http10"].startswith(b"HTTP/1.1 200 ") and out["http10"].endswith(b"alpha\n")
    assert out["dir"].startswith(b"HTTP/1.1 301 ") and b"Location: /sub/" in out["dir"]
    assert out["listing"].startswith(b"HTTP/1.1 200 ") and b'href="x%20y.txt"' in out["listing"]
    assert out["huge"].split(b" ")[1] in (b"414", b"400")


def test_no_date_without_clock(www):
    async def main():
        server, port = await start(www, clock=None)
        async with server:
            return await raw_exchange(port, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    resp = run(main())
    assert resp.startswith(b"HTTP/1.1 200 ") and b"\r\nDate:" not in resp


def test_client_decodes_chunked_and_read_until_close():
    async def chunked_server(reader, writer):
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n")
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(chunked_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            first = await http_get(reader, writer, "x", "/")
            second = await http_get(reader, writer, "x", "/")
            writer.close()
            return first, second

    (s1, _, b1), (s2, _, b2) = run(main())
    assert (s1, b1) == (200, b"hello, world")
    assert (s2, b2) == (200, b"until close")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (see .ci/run)")
def test_curl(www, tmp_path):
    async def main():
        server, port = await start(www)
        async with server:
            base = f"http://127.0.0.1:{port}"
            out = tmp_path / "curl.bin"
            # Two URLs in one curl run: it reuses the persistent connection.
            proc = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-v", "--fail", "-o", str(out), f"{base}/big.bin",
                "-o", str(tmp_path / "a.txt"), f"{base}/a.txt",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
            head = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-I", f"{base}/sub/b.json", stdout=asyncio.subprocess.PIPE)
            hout, _ = await head.communicate()
            nf = await asyncio.create_subprocess_exec(
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/missing",
                stdout=asyncio.subprocess.PIPE)
            nout, _ = await nf.communicate()
            return proc.returncode, err.decode(), out, hout.decode(), nout.decode()

    rc, err, out, head, code404 = run(main())
    assert rc == 0, err
    assert sha(out) == sha(www / "big.bin")
    assert (tmp_path / "a.txt").read_bytes() == b"alpha\n"
    assert "Re-using existing connection" in err or "Reusing existing connection" in err, err
    assert head.startswith("HTTP/1.1 200") and "application/json" in head
    assert code404 == "404"


def test_idle_keep_alive_connection_is_closed(www):
    async def main():
        server, port = await start(www, idle_timeout=0.2)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, _, _ = await http_get(reader, writer, "x", "/a.txt")
            eof = await asyncio.wait_for(reader.read(), 5)  # we send nothing more
            writer.close()
            return status, eof

    assert run(main()) == (200, b"")
