"""A tiny HTTP/1.1 file server and client (RFC 9110 semantics, RFC 9112 message syntax).

Small enough to read in one sitting, complete enough that `curl` and browsers are
happy: GET and HEAD, Content-Length framing, a Content-Type guess, persistent
connections, and the error answers a learner will meet (400, 403, 404, 405, 505).

Both sides are written against asyncio-shaped streams, so they run on
`asyncio.start_server` / `asyncio.open_connection` and on wirestack's own streams.

    server:  await host.start_server(http_handler("/srv/www"), port=80)
    client:  status, headers, body = await http_get(reader, writer, "198.18.0.2", "/")

Memory is bounded on both sides: lines and headers have size limits, files are
streamed in CHUNK-sized pieces with `await writer.drain()` between them, and the
client either keeps at most `max_body` bytes or hands chunks to a sink.
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import mimetypes
import os
import time
import urllib.parse
from typing import Callable, Optional

CHUNK = 64 * 1024
MAX_LINE = 8 * 1024          # request/status line and each header line
MAX_HEADERS = 100            # header fields per message
MAX_BODY = 64 * 1024 * 1024  # default bound on a body kept in memory by the client
SERVER_NAME = "wirestack"

REASONS = {
    200: "OK", 301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

_PEER_GONE = (ConnectionError, BrokenPipeError, TimeoutError, asyncio.IncompleteReadError)


class HttpError(Exception):
    """A request we answer with an error status (and then close the connection)."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


class ProtocolError(ValueError):
    """The peer's HTTP message is malformed (client side)."""


# -- shared message parsing ------------------------------------------------------------


async def _read_line(reader, too_long_status: int = 400) -> bytes:
    """One line without its terminator; b"" only at EOF.

    RFC 9112 §2.2: lines end in CRLF, but a recipient MAY accept a bare LF.
    asyncio's readline raises ValueError past its buffer limit: bounded either way.
    """
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise HttpError(too_long_status, "line too long") from None
    if len(line) > MAX_LINE:
        raise HttpError(too_long_status, "line too long")
    if line and not line.endswith(b"\n"):
        # EOF in the middle of a line: the peer went away mid-message.
        raise asyncio.IncompleteReadError(line, None)
    return line.rstrip(b"\r\n") if line else b""


async def _read_headers(reader) -> dict[str, str]:
    """Header fields until the empty line: lower-cased names, repeated fields joined.

    RFC 9110 §5.3: a recipient may combine repeated fields with ", ".
    RFC 9112 §5.1: no whitespace is allowed between the name and the colon, and
    obsolete line folding (a line starting with SP/HTAB) must be rejected or
    replaced; we reject.
    """
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _read_line(reader, too_long_status=431)
        if line == b"":
            return headers
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise HttpError(400, "malformed header field")
        key = name.decode("latin-1").lower()
        val = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {val}" if key in headers else val
    raise HttpError(431, "too many header fields")


def _tokens(value: Optional[str]) -> set[str]:
    return {t.strip().lower() for t in value.split(",")} if value else set()


# -- server --------------------------------------------------------------------------------


def _format_date(clock: Callable[[], float]) -> str:
    # RFC 9110 §5.6.7: IMF-fixdate, always GMT.
    return email.utils.formatdate(clock(), usegmt=True)


def http_handler(root_dir: str, *, clock: Optional[Callable[[], float]] = time.time,
                 idle_timeout: Optional[float] = 60.0,
                 log: Optional[Callable[[str], None]] = None):
    """A connection handler serving the files under root_dir.

    clock: seconds since the epoch for the Date header.  RFC 9110 §6.6.1 says an
    origin server without a reliable clock must not send Date, so pass None in
    simulations where the bytes on the wire must not depend on the wall clock.
    idle_timeout: close a persistent connection that sends no new request for
    this many seconds (None: never).  log: called with one access-log line per
    request.
    """
    root = os.path.realpath(root_dir)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"HTTP root {root_dir!r} is not a directory")

    async def handler(reader, writer) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                keep_alive = await _serve_one(reader, writer, root, clock, idle_timeout, log, peer)
                if not keep_alive:
                    break
        except _PEER_GONE:
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except (OSError, *_PEER_GONE):
                pass

    return handler


async def _serve_one(reader, writer, root, clock, idle_timeout, log, peer) -> bool:
    """Read and answer one request; True if the connection stays open."""
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
    # request-line (some clients send a stray CRLF after a POST body).
    try:
        for _ in range(4):
            coro = _read_line(reader, too_long_status=414)
            line = await (asyncio.wait_for(coro, idle_timeout) if idle_timeout else coro)
            if line:
                break
            if reader.at_eof():
                return False  # the client closed between requests: the normal end
        else:
            return False
    except asyncio.TimeoutError:
        return False
    except HttpError as e:
        await _send_error(writer, e.status, e.detail, clock, head=False)
        return False

    method = "-"
    target = line.decode("latin-1", "replace")
    try:
        method, target, version = _parse_request_line(line)
        headers = await _read_headers(reader)
        if version == "HTTP/1.1" and "host" not in headers:
            # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
            raise HttpError(400, "missing Host header")
        conn = _tokens(headers.get("connection"))
        if version == "HTTP/1.1":
            keep_alive = "close" not in conn          # persistent by default (RFC 9112 §9.3)
        else:
            keep_alive = "keep-alive" in conn         # HTTP/1.0: only when asked
        if "transfer-encoding" in headers:
            # A request body with transfer coding: we understand none for GET/HEAD.
            raise HttpError(501, "request Transfer-Encoding not supported")
        await _discard_body(reader, headers)
        if method not in ("GET", "HEAD"):
            raise HttpError(405)
        status = await _serve_path(writer, root, method, target, keep_alive, version, clock)
        if log:
            log(f"{_peer_str(peer)} \"{method} {target} {version}\" {status}")
        return keep_alive
    except HttpError as e:
        if log:
            log(f"{_peer_str(peer)} \"{method} {target}\" {e.status} {e.detail}".rstrip())
        await _send_error(writer, e.status, e.detail, clock, head=(method == "HEAD"))
        # After an error the framing of what follows is uncertain: close.
        return False


def _peer_str(peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    # RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise HttpError(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if not method.isascii() or not method.isalpha() or not method.isupper():
        raise HttpError(400, "malformed method")
    if not version.startswith("HTTP/") or len(version) != 8 or version[6] != "." \
            or not (version[5].isdigit() and version[7].isdigit()):
        raise HttpError(400, "malformed HTTP version")
    if version[5] != "1":
        raise HttpError(505)
    return method, target, version


async def _discard_body(reader, headers) -> None:
    cl = headers.get("content-length")
    if cl is None:
        return
    if not cl.isdigit():
        raise HttpError(400, "bad Content-Length")
    remaining = int(cl)
    while remaining:
        data = await reader.read(min(remaining, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(data)


def _resolve(root: str, target: str) -> tuple[str, str]:
    """(url_path, filesystem path) for a request-target, refusing escapes from root."""
    if target.startswith(("http://", "https://")):
        # absolute-form (RFC 9112 §3.2.2): a server MUST accept it; keep the path.
        rest = target.split("://", 1)[1]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not target.startswith("/"):
        raise HttpError(400, "request-target must be a path")
    raw_path = target.split("?", 1)[0].split("#", 1)[0]
    path = urllib.parse.unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    if "\x00" in path:
        raise HttpError(400, "NUL in path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        # Refuse rather than normalise: a ".." in a request is never innocent here.
        raise HttpError(403, "path traversal refused")
    fs = os.path.join(root, *parts)
    real = os.path.realpath(fs)
    if real != root and not real.startswith(root + os.sep):
        # A symlink pointing outside the served tree.
        raise HttpError(403, "path outside the served directory")
    return path, real


async def _serve_path(writer, root, method, target, keep_alive, version, clock) -> int:
    try:
        url_path, fs = _resolve(root, target)
    except UnicodeDecodeError:
        raise HttpError(400, "bad percent-encoding") from None
    if os.path.isdir(fs):
        if not url_path.endswith("/"):
            # Relative links in a directory page need the trailing slash.
            loc = urllib.parse.quote(url_path + "/")
            await _send_simple(writer, 301, b"moved\n", "text/plain", keep_alive, version,
                               clock, head=(method == "HEAD"), extra={"Location": loc})
            return 301
        index = os.path.join(fs, "index.html")
        if os.path.isfile(index):
            fs = index
        else:
            body = _listing(url_path, fs).encode()
            await _send_simple(writer, 200, body, "text/html; charset=utf-8", keep_alive,
                               version, clock, head=(method == "HEAD"))
            return 200
    try:
        f = open(fs, "rb")
    except FileNotFoundError:
        raise HttpError(404) from None
    except (PermissionError, IsADirectoryError):
        raise HttpError(403) from None
    except OSError:
        raise HttpError(404) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        ctype = mimetypes.guess_type(fs)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        writer.write(_head(200, {"Content-Type": ctype, "Content-Length": str(size)},
                           keep_alive, version, clock))
        if method == "HEAD":
            await writer.drain()
            return 200
        remaining = size
        while remaining > 0:
            # Synchronous file reads: local disk is fast, and a thread pool would
            # not work on the virtual-time loop of a simulation.
            data = f.read(min(CHUNK, remaining))
            if not data:
                break  # file shrank under us: the client sees a short body and we close
            writer.write(data)
            remaining -= len(data)
            await writer.drain()  # backpressure: never more than ~CHUNK queued per connection
        if remaining:
            raise ConnectionAbortedError("file shrank while being sent")
    return 200


def _listing(url_path: str, fs: str) -> str:
    names = sorted(os.listdir(fs))
    items = []
    for n in names:
        slash = "/" if os.path.isdir(os.path.join(fs, n)) else ""
        items.append(f'<li><a href="{urllib.parse.quote(n)}{slash}">{html.escape(n)}{slash}</a></li>')
    title = html.escape(url_path)
    return (f"<!DOCTYPE html>\n<html><head><title>Index of {title}</title></head><body>\n"
            f"<h1>Index of {title}</h1>\n<ul>\n" + "\n".join(items) + "\n</ul>\n</body></html>\n")


def _head(status: int, fields: dict, keep_alive: bool, version: str, clock) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, '')}"]
    if clock is not None:
        lines.append(f"Date: {_format_date(clock)}")
    lines.append(f"Server: {SERVER_NAME}")
    for k, v in fields.items():
        lines.append(f"{k}: {v}")
    if not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_simple(writer, status, body, ctype, keep_alive, version, clock, head,
                       extra=None) -> None:
    fields = {"Content-Type": ctype, "Content-Length": str(len(body))}
    if extra:
        fields.update(extra)
    writer.write(_head(status, fields, keep_alive, version, clock) + (b"" if head else body))
    await writer.drain()


async def _send_error(writer, status, detail, clock, head) -> None:
    body = (f"{status} {REASONS.get(status, '')}" + (f": {detail}" if detail else "") + "\n").encode()
    extra = {"Allow": "GET, HEAD"} if status == 405 else None
    try:
        await _send_simple(writer, status, body, "text/plain; charset=utf-8", False,
                           "HTTP/1.1", clock, head, extra)
    except _PEER_GONE:
        pass


# -- client --------------------------------------------------------------------------------


async def http_request(reader, writer, method: str, host: str, path: str, *,
                       headers: Optional[dict] = None, keep_alive: bool = True,
                       sink: Optional[Callable[[bytes], object]] = None,
                       max_body: int = MAX_BODY) -> tuple[int, dict, bytes]:
    """Send one request on an open connection and read the whole response.

    host goes in the Host header ("198.18.0.2" or "198.18.0.2:8080").  Returns
    (status, headers, body) with lower-cased header names.  With `sink`, body
    chunks are passed to sink(chunk) as they arrive and body is b"" (bounded memory
    for any size); without it, a body larger than max_body raises ProtocolError.
    After a response carrying "Connection: close", the caller should close.
    """
    fields = {"Host": host, "User-Agent": SERVER_NAME, "Accept": "*/*"}
    if not keep_alive:
        fields["Connection"] = "close"
    if headers:
        fields.update(headers)
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    writer.write((req + "\r\n").encode("latin-1"))
    await writer.drain()

    try:
        while True:
            status_line = await _read_line(reader)
            if not status_line:
                raise ProtocolError("connection closed before a response arrived")
            status = _parse_status_line(status_line)
            rheaders = await _read_headers(reader)
            # RFC 9110 §15.2: interim 1xx responses precede the final one.
            if 100 <= status < 200 and status != 101:
                continue
            break
    except HttpError as e:
        raise ProtocolError(f"malformed response: {e.detail}") from None

    chunks: list[bytes] = []
    total = 0

    def deliver(data: bytes) -> None:
        nonlocal total
        total += len(data)
        if sink is not None:
            sink(data)
        else:
            if total > max_body:
                raise ProtocolError(f"response body larger than max_body={max_body}")
            chunks.append(data)

    # RFC 9112 §6.3: how the length of a response body is determined.
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        pass
    elif "chunked" in _tokens(rheaders.get("transfer-encoding")):
        await _read_chunked(reader, deliver)
    elif "content-length" in rheaders:
        cl = rheaders["content-length"].split(",")[0].strip()
        if not cl.isdigit():
            raise ProtocolError(f"bad Content-Length {rheaders['content-length']!r}")
        remaining = int(cl)
        while remaining:
            data = await reader.read(min(remaining, CHUNK))
            if not data:
                raise ProtocolError(f"connection closed with {remaining} body bytes missing")
            remaining -= len(data)
            deliver(data)
    else:
        while True:  # delimited by the server closing the connection
            data = await reader.read(CHUNK)
            if not data:
                break
            deliver(data)
    return status, rheaders, b"".join(chunks)


def _parse_status_line(line: bytes) -> int:
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() \
            or len(parts[1]) != 3:
        raise ProtocolError(f"malformed status line {line[:80]!r}")
    return int(parts[1])


async def _read_chunked(reader, deliver) -> None:
    # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk
    # is size 0, then optional trailer fields and an empty line.
    while True:
        line = await _read_line(reader)
        size_txt = line.split(b";", 1)[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            break
        while size:
            data = await reader.read(min(size, CHUNK))
            if not data:
                raise ProtocolError("connection closed inside a chunk")
            size -= len(data)
            deliver(data)
        if await _read_line(reader) != b"":
            raise ProtocolError("missing CRLF after chunk data")
    while await _read_line(reader):  # trailer fields: ignored
        pass


async def http_get(reader, writer, host: str, path: str, **kw) -> tuple[int, dict, bytes]:
    """GET path from an open connection: (status, headers, body).  See http_request."""
    return await http_request(reader, writer, "GET", host, path, **kw)


async def http_get_to_file(reader, writer, host: str, path: str, file_path: str,
                           **kw) -> tuple[int, dict, int]:
    """GET path and write the body to file_path chunk by chunk: (status, headers, nbytes)."""
    n = 0
    with open(file_path, "wb") as f:
        def sink(data: bytes) -> None:
            nonlocal n
            f.write(data)
            n += len(data)

        status, headers, _ = await http_request(reader, writer, "GET", host, path, sink=sink, **kw)
    return status, headers, n
