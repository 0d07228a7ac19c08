"""An iperf3-compatible TCP server (and a small client), so a stock `iperf3 -c` can
measure wirestack, and wirestack can measure a stock `iperf3 -s`.

The protocol, as observed on the wire between iperf 3.12 binaries (tshark on a
loopback inside a network namespace) and from the man page; no iperf3 code was used.

Every connection, control or data, starts with the client sending a 37-byte
*cookie*: 36 printable characters and a NUL.  The first connection of a test is the
control connection; later connections carrying the same cookie are data streams.

Control messages are single signed bytes ("states"), and two JSON documents each
prefixed by a 4-byte big-endian length.  The order for one TCP test:

    client                                   server
    connect, cookie (37 B)          ->
                                    <-       PARAM_EXCHANGE (9)
    len32 + JSON parameters         ->       {"tcp":true,"time":3,"parallel":1,"len":131072,
                                              "reverse":true?, "num":0, "blockcount":0, ...}
                                    <-       CREATE_STREAMS (10)
    N data connections, each: cookie ->      (N = "parallel")
                                    <-       TEST_START (1), TEST_RUNNING (2)
    ... data: client->server, or server->client with "reverse" ...
    TEST_END (4)                    ->       (sent by the client in both directions
                                              once its timer or byte count is done)
                                    <-       server stops; closes the data streams (FIN)
                                    <-       EXCHANGE_RESULTS (13)
    len32 + JSON client results     ->
                                    <-       len32 + JSON server results
                                    <-       DISPLAY_RESULTS (14)
    IPERF_DONE (16)                 ->
    both close the control connection

Results JSON: {"cpu_util_total", "cpu_util_user", "cpu_util_system",
"sender_has_retransmits", "congestion_used"?, "streams": [{"id", "bytes",
"retransmits", "jitter", "errors", "packets", "start_time", "end_time"}]}.
Stream ids, as both sides number them: 1, 3, 4, 5, ... (the second stream gets 3).
An error is SERVER_ERROR (-2) followed by two big-endian int32: iperf3's own error
number (13 prints "an option you are trying to set is not implemented yet") and
errno.  A second client while a test runs gets ACCESS_DENIED (-1): "the server is
busy running a test".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

DEFAULT_PORT = 5201
COOKIE_SIZE = 37

# Control states (one signed byte on the wire).
TEST_START = 1
TEST_RUNNING = 2
TEST_END = 4
PARAM_EXCHANGE = 9
CREATE_STREAMS = 10
SERVER_TERMINATE = 11
CLIENT_TERMINATE = 12
EXCHANGE_RESULTS = 13
DISPLAY_RESULTS = 14
IPERF_START = 15
IPERF_DONE = 16
ACCESS_DENIED = -1
SERVER_ERROR = -2

# iperf3 error numbers we send in a SERVER_ERROR (their text is printed by the client).
IE_STREAMS_TOO_MANY = 6       # "number of parallel streams too large"
IE_BLOCK_TOO_LARGE = 7        # "block size too large"
IE_NOT_IMPLEMENTED = 13       # "an option you are trying to set is not implemented yet"
IE_RECV_PARAMS = 114          # "unable to receive parameters from client"

MAX_JSON = 64 * 1024          # bound on a control-channel JSON document
MAX_BLOCK = 1024 * 1024       # iperf3's own limit for -l on TCP
MAX_STREAMS = 128             # iperf3's own limit for -P
READ_SIZE = 256 * 1024        # per read() on a receiving data stream
STREAM_WAIT = 10.0            # seconds to wait for all data streams to connect
RESULT_WAIT = 10.0            # seconds to wait for each end-of-test message
DRAIN_IDLE = 0.05             # after TEST_END: a stream this long without new data is done
DRAIN_MAX = 2.0               # ... and we stop draining after this long in any case

_STATE = struct.Struct("b")
_LEN = struct.Struct("!I")
_ERR = struct.Struct("!bii")
_PEER_GONE = (ConnectionError, BrokenPipeError, TimeoutError, asyncio.IncompleteReadError)


class Iperf3Error(Exception):
    """The iperf3 peer misbehaved or the test could not run; str() is printable."""


def _state(value: int) -> bytes:
    return _STATE.pack(value)


async def _read_state(reader) -> int:
    return _STATE.unpack(await reader.readexactly(1))[0]


async def _read_json(reader) -> dict:
    (n,) = _LEN.unpack(await reader.readexactly(4))
    if n > MAX_JSON:
        raise Iperf3Error(f"JSON message of {n} bytes exceeds the {MAX_JSON}-byte limit")
    try:
        obj = json.loads(await reader.readexactly(n))
    except ValueError:
        raise Iperf3Error("malformed JSON on the control connection") from None
    if not isinstance(obj, dict):
        raise Iperf3Error("control JSON is not an object")
    return obj


def _json_msg(obj: dict) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _LEN.pack(len(data)) + data


async def _close(writer) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, *_PEER_GONE):
        pass


def _stream_id(index: int) -> int:
    # Observed numbering (both sides agree): 1, 3, 4, 5, ...
    return 1 if index == 0 else index + 2


def _payload(size: int) -> bytes:
    # Deterministic filler: a simulated run must put the same bytes on the wire
    # every time (iperf3 itself sends random data; the content does not matter).
    pattern = bytes(range(256))
    return (pattern * (size // 256 + 1))[:size]


@dataclass
class _Stream:
    id: int
    reader: Any                  # asyncio's StreamReader or a wirestack one: the same shape
    writer: Any
    done: asyncio.Future[None]
    bytes: int = 0
    task: Optional[asyncio.Task] = None
    last_byte_at: float = 0.0   # when the last byte arrived (receiving streams)


@dataclass
class _Test:
    cookie: bytes
    params: dict
    reverse: bool
    parallel: int
    block: int
    streams: list = field(default_factory=list)
    accepting: bool = False
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)
    running: asyncio.Event = field(default_factory=asyncio.Event)  # set once TEST_RUNNING was sent
    stopping: bool = False
    start: float = 0.0
    end: float = 0.0


@dataclass
class TestSummary:
    """What the server saw of one finished test (also kept in Iperf3Server.results)."""
    peer: object
    reverse: bool
    streams: int
    bytes: int
    seconds: float
    client_results: dict
    error: Optional[str] = None

    @property
    def bits_per_second(self) -> float:
        return 8 * self.bytes / self.seconds if self.seconds > 0 else 0.0


class Iperf3Server:
    """Serve iperf3 tests on one listening port, one test at a time (like iperf3 -s).

        srv = Iperf3Server()
        await asyncio.start_server(srv.handler, "127.0.0.1", 5201)   # or a wirestack host

    Control and data connections arrive at the same port; `handler` reads the
    cookie first and routes the connection.  Options: `clock` (seconds, default the
    running loop's clock so simulations use virtual time), `report_cpu` (send real
    CPU usage; False sends zeros so simulated runs stay byte-identical),
    `congestion` (a name for "congestion_used", e.g. "newreno"), `log` (a callable
    taking one line of text).
    """

    def __init__(self, *, clock: Optional[Callable[[], float]] = None, report_cpu: bool = True,
                 congestion: Optional[str] = None, log: Optional[Callable[[str], None]] = None,
                 keep_results: int = 16):
        self._clock = clock
        self.report_cpu = report_cpu
        self.congestion = congestion
        self.log = log or (lambda line: None)
        self.results: list[TestSummary] = []
        self._keep = keep_results
        self._test: Optional[_Test] = None

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def handler(self, reader, writer) -> None:
        try:
            cookie = await reader.readexactly(COOKIE_SIZE)
        except _PEER_GONE:
            await _close(writer)
            return
        test = self._test
        if test is not None and cookie == test.cookie:
            await self._data_stream(test, reader, writer)
        elif test is not None:
            # One test at a time: the client prints "the server is busy running a test".
            try:
                writer.write(_state(ACCESS_DENIED))
                await writer.drain()
            except _PEER_GONE:
                pass
            await _close(writer)
        else:
            await self._control(cookie, reader, writer)

    # -- data connections ----------------------------------------------------------------

    async def _data_stream(self, test: _Test, reader, writer) -> None:
        if not test.accepting or len(test.streams) >= test.parallel:
            await _close(writer)  # a stream that was not asked for
            return
        loop = asyncio.get_running_loop()
        st = _Stream(id=_stream_id(len(test.streams)), reader=reader, writer=writer,
                     task=asyncio.current_task(), done=loop.create_future())
        test.streams.append(st)
        if len(test.streams) == test.parallel:
            test.accepting = False
            test.all_connected.set()
        try:
            if test.reverse:
                await self._send_loop(test, st)
            else:
                await self._receive_loop(test, st)
        except asyncio.CancelledError:
            # The control side cancels us at TEST_END; any other cancellation
            # (server shutdown) must propagate.
            if not test.stopping:
                raise
        except _PEER_GONE:
            pass
        finally:
            await _close(writer)
            if not st.done.done():
                st.done.set_result(None)

    async def _receive_loop(self, test: _Test, st: _Stream) -> None:
        # Wait for TEST_START as a receiver need not: bytes before it still count,
        # as they do for iperf3 (the client only sends after TEST_RUNNING anyway).
        read = st.reader.read
        while not test.stopping:
            data = await read(READ_SIZE)
            if not data:
                break
            st.bytes += len(data)
            st.last_byte_at = self._now()

    async def _send_loop(self, test: _Test, st: _Stream) -> None:
        # Like iperf3, send nothing before TEST_RUNNING is on its way.
        await test.running.wait()
        limit = _byte_limit(test.params)
        block = _payload(test.block)
        write, drain = st.writer.write, st.writer.drain
        while not test.stopping:
            if limit is not None:
                left = limit - sum(s.bytes for s in test.streams)
                if left <= 0:
                    break  # -n / -k reached: wait (idle) for the client's TEST_END
                chunk = block if left >= len(block) else block[:left]
            else:
                chunk = block
            write(chunk)
            st.bytes += len(chunk)
            await drain()

    # -- the control connection ----------------------------------------------------------

    async def _control(self, cookie: bytes, reader, writer) -> None:
        peer = writer.get_extra_info("peername")
        _no_delay(writer)
        test: Optional[_Test] = None
        error: Optional[str] = None
        try:
            writer.write(_state(PARAM_EXCHANGE))
            await writer.drain()
            try:
                params = await asyncio.wait_for(_read_json(reader), RESULT_WAIT)
            except Iperf3Error:
                await self._refuse(writer, IE_RECV_PARAMS)
                raise
            problem = _unsupported(params)
            if problem:
                code, why = problem
                await self._refuse(writer, code)
                raise Iperf3Error(f"refused test from {peer}: {why}")

            test = _Test(cookie=cookie, params=params, reverse=bool(params.get("reverse")),
                         parallel=int(params.get("parallel") or 1),
                         block=int(params.get("len") or 128 * 1024),
                         all_connected=asyncio.Event(), running=asyncio.Event())
            self._test = test
            test.accepting = True
            self.log(f"iperf3: test from {_peer_str(peer)}: {test.parallel} stream(s), "
                     f"{'server sends (reverse)' if test.reverse else 'client sends'}, "
                     f"{params.get('time')} s")
            writer.write(_state(CREATE_STREAMS))
            await writer.drain()
            await self._wait_streams(test, reader)

            test.start = self._now()
            cpu0 = os.times()
            wall0 = time.monotonic()
            writer.write(_state(TEST_START) + _state(TEST_RUNNING))
            await writer.drain()
            test.running.set()

            await self._wait_test_end(test, reader)
            test.end = self._now()
            cpu = _cpu_util(cpu0, wall0) if self.report_cpu else (0.0, 0.0, 0.0)
            if not test.reverse:
                await self._drain_in_flight(test)
                # The bytes drained after TEST_END count, so their time counts too: a
                # receiver's rate is its bytes over the time until the last one arrived.
                test.end = max([test.end] + [st.last_byte_at for st in test.streams])
            await self._stop_streams(test)

            writer.write(_state(EXCHANGE_RESULTS))
            await writer.drain()
            client_results = await asyncio.wait_for(_read_json(reader), RESULT_WAIT)
            writer.write(_json_msg(self._results_json(test, cpu)) + _state(DISPLAY_RESULTS))
            await writer.drain()
            try:
                final = await asyncio.wait_for(_read_state(reader), RESULT_WAIT)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                final = IPERF_DONE  # a client that just closes is fine too
            if final not in (IPERF_DONE, CLIENT_TERMINATE):
                raise Iperf3Error(f"expected IPERF_DONE, got state {final}")
            self._remember(peer, test, client_results, None)
        except asyncio.TimeoutError:
            error = "timed out waiting for the client"
        except Iperf3Error as e:
            error = str(e)
        except _PEER_GONE as e:
            error = f"client went away ({type(e).__name__})"
        finally:
            if test is not None:
                await self._stop_streams(test)
                if error:
                    self._remember(peer, test, {}, error)
            if self._test is test:
                self._test = None
            await _close(writer)
        if error:
            self.log(f"iperf3: test from {_peer_str(peer)} ended: {error}")

    async def _refuse(self, writer, code: int) -> None:
        try:
            writer.write(_ERR.pack(SERVER_ERROR, code, 0))
            await writer.drain()
        except _PEER_GONE:
            pass

    async def _wait_streams(self, test: _Test, reader) -> None:
        """Wait for the data connections, watching the control connection meanwhile."""
        ctrl = asyncio.ensure_future(_read_state(reader))
        streams = asyncio.ensure_future(test.all_connected.wait())
        try:
            done, _ = await asyncio.wait({ctrl, streams}, timeout=STREAM_WAIT,
                                         return_when=asyncio.FIRST_COMPLETED)
            if streams not in done:
                if ctrl in done:
                    state = ctrl.result() if not ctrl.exception() else None
                    raise Iperf3Error(f"client ended the test before its streams connected "
                                      f"(state {state})")
                raise asyncio.TimeoutError()
            if ctrl in done:  # a state byte arrived together with the last stream
                state = ctrl.result() if not ctrl.exception() else None
                raise Iperf3Error(f"unexpected control state {state} before TEST_START")
        finally:
            for fut in (ctrl, streams):
                if not fut.done():
                    fut.cancel()
            # Let the cancelled read finish so nobody else reads a half-consumed byte.
            await asyncio.gather(ctrl, streams, return_exceptions=True)

    async def _wait_test_end(self, test: _Test, reader) -> None:
        duration = float(test.params.get("time") or 0) + float(test.params.get("omit") or 0)
        # The client decides when the test ends; we only guard against a client that
        # vanished without closing (a generous multiple of the planned duration).
        limit = duration * 2 + 30 if duration > 0 and not _byte_limit(test.params) else None
        while True:
            state = await asyncio.wait_for(_read_state(reader), limit)
            if state == TEST_END:
                return
            if state == CLIENT_TERMINATE:
                raise Iperf3Error("client terminated the test")
            raise Iperf3Error(f"unexpected control state {state} during the test")

    async def _drain_in_flight(self, test: _Test) -> None:
        """Keep reading until the data streams go quiet.

        TEST_END travels on another connection and can overtake the last megabytes
        still queued in our receive buffers (a -n 10M test would otherwise report
        half the bytes).  The client sends nothing after TEST_END, so "no new
        bytes for DRAIN_IDLE" means we have everything.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_MAX
        total = -1
        while loop.time() < deadline:
            now_total = sum(s.bytes for s in test.streams)
            if now_total == total or all(s.done.done() for s in test.streams):
                return
            total = now_total
            await asyncio.sleep(DRAIN_IDLE)

    async def _stop_streams(self, test: _Test) -> None:
        if test.stopping and all(s.done.done() for s in test.streams):
            return
        test.stopping = True
        test.accepting = False
        for st in test.streams:
            if st.task is not None and not st.done.done():
                st.task.cancel()
        if test.streams:
            await asyncio.gather(*(s.done for s in test.streams), return_exceptions=True)

    def _results_json(self, test: _Test, cpu) -> dict:
        seconds = max(test.end - test.start, 0.0)
        res = {
            "cpu_util_total": cpu[0],
            "cpu_util_user": cpu[1],
            "cpu_util_system": cpu[2],
            # We cannot count retransmissions through a stream API: say so, and the
            # client leaves the "Retr" column out.
            "sender_has_retransmits": 0 if test.reverse else -1,
            "streams": [
                {"id": s.id, "bytes": s.bytes, "retransmits": -1, "jitter": 0,
                 "errors": 0, "packets": 0, "start_time": 0, "end_time": round(seconds, 6)}
                for s in test.streams
            ],
        }
        if self.congestion:
            res["congestion_used"] = self.congestion
        return res

    def _remember(self, peer, test: _Test, client_results: dict, error) -> None:
        summary = TestSummary(peer=peer, reverse=test.reverse, streams=len(test.streams),
                              bytes=sum(s.bytes for s in test.streams),
                              seconds=max(test.end - test.start, 0.0),
                              client_results=client_results, error=error)
        self.results.append(summary)
        del self.results[:-self._keep]
        if not error:
            self.log(f"iperf3: {summary.bytes} bytes in {summary.seconds:.2f} s = "
                     f"{summary.bits_per_second / 1e6:.2f} Mbit/s "
                     f"({'sent' if test.reverse else 'received'})")


def _no_delay(writer) -> None:
    """TCP_NODELAY on a control connection, as iperf3 sets it: its one-byte states must
    not wait for an ACK behind Nagle's algorithm (with the peer's delayed ACK, 200 ms in
    which the data streams already run -- the receiver's clock would start late)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        if hasattr(sock, "setsockopt"):            # asyncio (a kernel socket)
            import socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:                                       # a wirestack TcpSocket
            sock.nodelay = True
    except (OSError, AttributeError):
        pass


def _peer_str(peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _byte_limit(params: dict) -> Optional[int]:
    """-n BYTES or -k BLOCKS as a byte count, or None for a timed test."""
    if params.get("num"):
        return int(params["num"])
    if params.get("blockcount"):
        return int(params["blockcount"]) * int(params.get("len") or 128 * 1024)
    return None


def _unsupported(params: dict):
    """(iperf3 error number, reason) if we cannot run this test, else None."""
    if params.get("udp") or params.get("sctp") or not params.get("tcp", True):
        return IE_NOT_IMPLEMENTED, "UDP (and SCTP) tests are not supported, only TCP"
    if params.get("bidirectional"):
        return IE_NOT_IMPLEMENTED, "--bidir is not supported"
    if params.get("authtoken") or params.get("get_server_output"):
        return IE_NOT_IMPLEMENTED, "authentication / --get-server-output not supported"
    try:
        parallel = int(params.get("parallel") or 1)
        block = int(params.get("len") or 128 * 1024)
    except (TypeError, ValueError):
        return IE_RECV_PARAMS, "non-numeric parameters"
    if not 1 <= parallel <= MAX_STREAMS:
        return IE_STREAMS_TOO_MANY, f"{parallel} streams"
    if not 1 <= block <= MAX_BLOCK:
        return IE_BLOCK_TOO_LARGE, f"block size {block}"
    return None


def _cpu_util(cpu0, wall0) -> tuple[float, float, float]:
    # Percent of one CPU used by this process over the test, like iperf3 reports.
    cpu1, wall = os.times(), time.monotonic() - wall0
    if wall <= 0:
        return 0.0, 0.0, 0.0
    user = 100.0 * (cpu1.user - cpu0.user) / wall
    system = 100.0 * (cpu1.system - cpu0.system) / wall
    return user + system, user, system


# -- client --------------------------------------------------------------------------------


def make_cookie(rng: Optional[random.Random] = None) -> bytes:
    """36 random characters and a NUL, like the cookies iperf3 clients send."""
    rng = rng or random.Random()
    alphabet = string.ascii_lowercase + "234567"
    return "".join(rng.choice(alphabet) for _ in range(36)).encode() + b"\0"


@dataclass
class ClientResult:
    sent: int                 # bytes this side wrote (forward) or the server wrote (reverse)
    received: int             # bytes the receiving side counted
    seconds: float
    reverse: bool
    server_results: dict

    @property
    def bits_per_second(self) -> float:
        return 8 * self.received / self.seconds if self.seconds > 0 else 0.0


async def iperf3_client(open_connection, host: str, port: int = DEFAULT_PORT, *,
                        seconds: float = 3.0, reverse: bool = False, parallel: int = 1,
                        block: int = 128 * 1024, rng: Optional[random.Random] = None,
                        clock: Optional[Callable[[], float]] = None) -> ClientResult:
    """Run one TCP test against an iperf3 server (a stock `iperf3 -s` or Iperf3Server).

    open_connection: `asyncio.open_connection` or a wirestack host's method with the
    same shape, called as open_connection(host, port) -> (reader, writer).
    """
    now = clock or asyncio.get_running_loop().time
    cookie = make_cookie(rng)
    reader, writer = await open_connection(host, port)
    _no_delay(writer)
    data_conns = []
    tasks = []
    try:
        writer.write(cookie)
        await writer.drain()
        state = await _read_state(reader)
        if state != PARAM_EXCHANGE:
            raise Iperf3Error(_describe_refusal(state))
        params = {"tcp": True, "omit": 0, "time": int(seconds) if seconds == int(seconds) else seconds,
                  "num": 0, "blockcount": 0, "parallel": parallel, "len": block,
                  "pacing_timer": 1000, "client_version": "3.12"}
        if reverse:
            params["reverse"] = True
        writer.write(_json_msg(params))
        await writer.drain()
        state = await _read_state(reader)
        if state == SERVER_ERROR:
            code, err = struct.unpack("!ii", await reader.readexactly(8))
            raise Iperf3Error(f"server refused the test (iperf3 error {code}, errno {err})")
        if state != CREATE_STREAMS:
            raise Iperf3Error(f"expected CREATE_STREAMS, got state {state}")
        for _ in range(parallel):
            r, w = await open_connection(host, port)
            w.write(cookie)
            await w.drain()
            data_conns.append((r, w))
        for expected in (TEST_START, TEST_RUNNING):
            state = await _read_state(reader)
            if state != expected:
                raise Iperf3Error(f"expected state {expected}, got {state}")
        stop = asyncio.Event()
        counts = [0] * parallel
        payload = _payload(block)

        async def send(i, w):
            while not stop.is_set():
                w.write(payload)
                counts[i] += len(payload)
                await w.drain()

        last_byte = [0.0]

        async def recv(i, r):
            while True:
                data = await r.read(READ_SIZE)
                if not data:
                    return
                counts[i] += len(data)
                last_byte[0] = now()

        start = now()
        for i, (r, w) in enumerate(data_conns):
            tasks.append(asyncio.ensure_future(recv(i, r) if reverse else send(i, w)))
        await asyncio.sleep(seconds)
        stop.set()
        elapsed = now() - start
        writer.write(_state(TEST_END))
        await writer.drain()
        while True:
            state = await _read_state(reader)
            if state == EXCHANGE_RESULTS:
                break
            if state in (SERVER_ERROR, SERVER_TERMINATE, ACCESS_DENIED):
                raise Iperf3Error(_describe_refusal(state))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        mine = {"cpu_util_total": 0.0, "cpu_util_user": 0.0, "cpu_util_system": 0.0,
                "sender_has_retransmits": -1 if reverse else 0,
                "streams": [{"id": _stream_id(i), "bytes": counts[i], "retransmits": -1,
                             "jitter": 0, "errors": 0, "packets": 0, "start_time": 0,
                             "end_time": round(elapsed, 6)} for i in range(parallel)]}
        writer.write(_json_msg(mine))
        await writer.drain()
        theirs = await _read_json(reader)
        state = await _read_state(reader)
        if state != DISPLAY_RESULTS:
            raise Iperf3Error(f"expected DISPLAY_RESULTS, got state {state}")
        writer.write(_state(IPERF_DONE))
        await writer.drain()
        server_bytes = sum(int(s.get("bytes", 0)) for s in theirs.get("streams", []))
        mine_bytes = sum(counts)
        if reverse:
            # We received until the server's last byte arrived, after our timer ended:
            # count the bytes over that time, as the receiving side should.
            elapsed = max(elapsed, last_byte[0] - start)
            return ClientResult(sent=server_bytes, received=mine_bytes, seconds=elapsed,
                                reverse=True, server_results=theirs)
        return ClientResult(sent=mine_bytes, received=server_bytes, seconds=elapsed,
                            reverse=False, server_results=theirs)
    finally:
        for t in tasks:
            t.cancel()
        for _, w in data_conns:
            await _close(w)
        await _close(writer)


def _describe_refusal(state: int) -> str:
    if state == ACCESS_DENIED:
        return "the server is busy running a test"
    if state == SERVER_ERROR:
        return "the server reported an error"
    if state == SERVER_TERMINATE:
        return "the server terminated the test"
    return f"unexpected control state {state}"
