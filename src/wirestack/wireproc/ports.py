"""Port adapters: how real things plug into a station of the real-time wire.

Each adapter does one job: move whole Ethernet frames (no FCS) between its transport and
a :class:`~wirestack.wireproc.driver.Station`. Frames from outside go to
``wire.inject(station, frame)``; frames the medium delivers come back through
``station.peer(frame)``.

=========================  ================================================================
``unix:PATH``              a listening Unix stream socket, QEMU stream framing (4-byte
``tcp:127.0.0.1:PORT``     big-endian length + frame). Every client that connects is one
                           station; the socket file is removed on close.
``tap:NETNS:ADDR/PREFIX``  a TAP device whose kernel side lives in namespace NETNS (created
                           if missing, then deleted on close) with ADDR/PREFIX on it: the
                           Linux kernel is a host on the wire.
``packet:IFNAME[@NETNS]``  an AF_PACKET socket on an existing interface (say, one end of a
                           veth pair), promiscuous; frames this socket sent are not read back.
``pcap:FILE``              replays a capture into the medium with its original timing;
                           what the medium delivers to it is counted and discarded.
=========================  ================================================================

Transport problems are never silent: a stream client that sends a bad length prefix,
disconnects, or stops reading for ``stall_timeout`` seconds is closed with a printed
reason and a counter (``closed_<reason>``); the other clients and ports are untouched.
Frames a port cannot write out because its peer is too slow are counted as
``transport_drops`` -- separately from the wire's own decisions, which are in the decision
log.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import time
from typing import Callable, Iterator

from ..phy import netns as _netns
from ..phy.stream import FramingError, FrameDecoder, encode, parse_spec
from ..phy.tap import TapDevice, TapError
from ..sim import LinkParams
from ..trace.counters import Counters
from ..trace.pcap import PcapReader
from .driver import RealtimeWire, Station, WireFull

ETH_HLEN = 14
OUT_LIMIT = 1 << 20        # bytes a slow stream client may have waiting before frames are dropped
MAX_CLIENTS = 32           # per stream port
READ_SIZE = 1 << 18
BATCH = 128


class PortError(Exception):
    """A port could not be set up; str() is one printable sentence."""


class Port:
    """Common parts: a name, a spec, the medium it plugs into, counters, a printer."""

    kind = "?"

    def __init__(self, wire: RealtimeWire, spec: str, name: str, medium: str,
                 params_in: LinkParams | None = None, params_out: LinkParams | None = None,
                 say: Callable[[str], object] = print):
        self.wire = wire
        self.spec = spec
        self.name = name
        if medium not in wire.media:
            raise PortError(f"port {name}: no medium named {medium!r}")
        self.medium = wire.media[medium]
        self.params_in = params_in
        self.params_out = params_out
        self.say = say
        self.counters = Counters()
        self.loop = wire.loop

    def _station(self) -> Station:
        return self.medium.acquire(self.name, self.params_in, self.params_out)

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def inject_frame(self, st: Station, frame: bytes) -> None:
        if len(frame) < ETH_HLEN:
            self.counters.incr("rx_runts")    # not even an Ethernet header: not a frame
            return
        self.counters.incr("rx_frames")
        self.wire.inject(st, frame)


# ------------------------------------------------------------------------------------------
# Stream sockets (QEMU framing)
# ------------------------------------------------------------------------------------------

class StreamPort(Port):
    """``unix:PATH`` / ``tcp:HOST:PORT``: a listening socket; each client is one station."""

    kind = "stream"

    def __init__(self, *a, stall_timeout: float = 5.0, **kw):
        super().__init__(*a, **kw)
        try:
            self.family, self.addr = parse_spec(self.spec)
        except ValueError as e:
            raise PortError(str(e)) from None
        self.stall_timeout = stall_timeout
        self.sock: socket.socket | None = None
        self.clients: list[_StreamClient] = []
        self._made_path: tuple[str, int] | None = None   # (path, inode) of our socket file
        self._next = 0
        self._stall_timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        # parse_spec gives a unix: port its path (a str), a tcp: port a (host, port) pair.
        path = self.addr if isinstance(self.addr, str) else None
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            if path is not None:
                self._clear_stale(path)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.addr)
            sock.listen(MAX_CLIENTS)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise PortError(f"port {self.name}: cannot listen on {self.spec}: {e.strerror or e}") from None
        if path is not None:
            self._made_path = (path, os.stat(path).st_ino)
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._accept)
        self._stall_timer = self.loop.call_later(1.0, self._check_stalls)

    def _clear_stale(self, path: str) -> None:
        # A socket file left by a wire that was killed -9 would make bind fail; remove it,
        # but only if it is a socket nobody listens on any more.
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise PortError(f"port {self.name}: {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except OSError:
            return
        finally:
            probe.close()
        raise PortError(f"port {self.name}: {path} is in use by another process")

    def _accept(self) -> None:
        sock = self.sock
        assert sock is not None, "the socket is a reader only while it is open"
        for _ in range(16):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.counters.incr("accept_errors")
                self.say(f"port {self.name}: accept failed: {e.strerror or e}")
                return
            self._next += 1
            label = f"{self.name}#{self._next}"
            if len(self.clients) >= MAX_CLIENTS:
                self.counters.incr("refused_full")
                self.say(f"refused {label} {self.spec}: {MAX_CLIENTS} clients already")
                conn.close()
                continue
            try:
                st = self._station()
            except WireFull as e:
                self.counters.incr("refused_full")
                self.say(f"refused {label} {self.spec}: {e}")
                conn.close()
                continue
            conn.setblocking(False)
            if self.family == socket.AF_INET:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _StreamClient(self, conn, label, st)
            self.clients.append(client)
            self.counters.incr("attached")
            self.say(f"attached {label} {self.spec} station {st.name}")

    def _check_stalls(self) -> None:
        now = time.monotonic()
        for c in list(self.clients):
            if c.out and now - c.progress > self.stall_timeout:
                c.close("stalled", f"stalled: read nothing for {self.stall_timeout:g} s "
                        f"({len(c.out)} bytes waiting)")
        self._stall_timer = self.loop.call_later(1.0, self._check_stalls)

    def close(self) -> None:
        for c in list(self.clients):
            c.close("wire_closed", "the wire is shutting down", quiet=True)
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        if self._made_path is not None:
            path, ino = self._made_path
            try:
                if os.stat(path).st_ino == ino:   # still ours, not a newer wire's
                    os.unlink(path)
            except FileNotFoundError:
                pass
            self._made_path = None


class _StreamClient:
    """One connected peer of a stream port."""

    def __init__(self, port: StreamPort, sock: socket.socket, label: str, st: Station):
        self.port = port
        self.sock = sock
        self.fd = sock.fileno()
        self.label = label
        self.st = st
        self.decoder = FrameDecoder()
        self.out = bytearray()
        self.progress = time.monotonic()
        self.writing = False
        self.closed = False
        st.peer = self.deliver
        st.label = label
        port.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except ConnectionResetError:
            # A peer that dies (kill -9) with data unread resets instead of closing.
            self.close("disconnected", "peer disconnected (connection reset)")
            return
        except OSError as e:
            self.close("read_error", f"read error: {e.strerror}")
            return
        if not data:
            self.close("disconnected", "peer disconnected")
            return
        try:
            frames = self.decoder.feed(data)
        except FramingError as e:
            for f in e.frames:
                self.port.inject_frame(self.st, f)
            self.close("bad_length", str(e))
            return
        inject = self.port.inject_frame
        st = self.st
        for f in frames:
            inject(st, f)

    def deliver(self, frame: bytes) -> None:
        """The medium delivered ``frame`` to this station: send it to the peer."""
        if self.closed:
            return
        data = encode(frame)
        port = self.port
        if self.out:
            if len(self.out) + len(data) > OUT_LIMIT:
                port.counters.incr("transport_drops")   # the peer is not keeping up
                return
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self.close("write_error", f"write error: {e.strerror}")
            return
        port.counters.incr("tx_frames")
        if n < len(data):
            self.out += data[n:]
            self.progress = time.monotonic()
            self.writing = True
            port.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError as e:
            self.close("write_error", f"write error: {e.strerror}")
            return
        if n:
            del self.out[:n]
            self.progress = time.monotonic()
        if not self.out:
            self.writing = False
            self.port.loop.remove_writer(self.fd)

    def close(self, counter: str, reason: str, quiet: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        port = self.port
        port.loop.remove_reader(self.fd)
        if self.writing:
            port.loop.remove_writer(self.fd)
        self.sock.close()
        port.counters.incr("closed_" + counter)
        port.medium.release(self.st)
        port.clients.remove(self)
        if not quiet:
            port.say(f"detached {self.label} {port.spec}: {reason}")


# ------------------------------------------------------------------------------------------
# TAP: the Linux kernel as a host on the wire
# ------------------------------------------------------------------------------------------

class TapPort(Port):
    """``tap:NETNS:ADDR/PREFIX``: a TAP device born in NETNS (created if missing) with the
    kernel's address ADDR/PREFIX on it. The device is named ``wire<N>`` (N = port number)."""

    kind = "tap"

    def __init__(self, *a, index: int = 0, **kw):
        super().__init__(*a, **kw)
        parts = self.spec.split(":")
        if len(parts) != 3 or parts[0] != "tap" or "/" not in parts[2]:
            raise PortError(f"port {self.name}: expected tap:NETNS:ADDR/PREFIX, not {self.spec!r}")
        self.netns, self.cidr = parts[1], parts[2]
        try:
            _netns.path(self.netns)
        except ValueError as e:
            raise PortError(str(e)) from None
        self.ifname = f"wire{index}"
        self.created_ns = False
        self.tap: TapDevice | None = None
        self.st: Station | None = None

    def start(self) -> None:
        try:
            if not _netns.exists(self.netns):
                _netns.create(self.netns)
                self.created_ns = True
            self.tap = TapDevice(self.ifname, netns=self.netns)
            self.tap.configure_peer(self.cidr)
        except (TapError, _netns.NetnsError) as e:
            self.close()
            raise PortError(f"port {self.name}: {e}") from None
        self.st = self._station()
        self.st.peer = self._deliver
        self.st.label = self.name
        self.loop.add_reader(self.tap.fileno(), self._readable)
        self.say(f"attached {self.name} {self.spec} station {self.st.name} (kernel {self.ifname})")

    def _readable(self) -> None:
        tap, st = self.tap, self.st
        assert tap is not None and st is not None, "the TAP is a reader only while it is bound"
        try:
            frames = tap.read_frames(BATCH)
        except TapError as e:
            self.say(f"detached {self.name} {self.spec}: {e}")
            self.counters.incr("closed_read_error")
            self.loop.remove_reader(tap.fileno())
            return
        for f in frames:
            self.inject_frame(st, f)

    def _deliver(self, frame: bytes) -> None:
        tap = self.tap
        assert tap is not None, "close() unbinds the station before it closes the TAP"
        try:
            ok = tap.write(frame)
        except TapError:
            ok = False
        if ok:
            self.counters.incr("tx_frames")
        else:
            self.counters.incr("transport_drops")   # the kernel's input queue was full

    def close(self) -> None:
        if self.tap is not None:
            if self.st is not None:
                self.loop.remove_reader(self.tap.fileno())
                self.medium.release(self.st)
                self.st = None
            self.tap.close()
            self.tap = None
        if self.created_ns:
            try:
                _netns.delete(self.netns)
            except _netns.NetnsError as e:
                self.say(f"port {self.name}: {e}")
            self.created_ns = False


# ------------------------------------------------------------------------------------------
# AF_PACKET on an existing interface
# ------------------------------------------------------------------------------------------

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4        # sll_pkttype of a frame this host sent
_PACKET_MREQ = "iHH8s"     # struct packet_mreq: ifindex, type, alen, address


class PacketPort(Port):
    """``packet:IFNAME[@NETNS]``: the wire reads and writes raw frames on an interface that
    already exists (the user made it), in promiscuous mode. Switch offloads off on it
    (``ethtool -K IFNAME gro off gso off tso off``), or the kernel may hand over frames
    bigger than the MTU, which the medium drops as ``mtu_exceeded``."""

    kind = "packet"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        body = self.spec.partition(":")[2]
        self.ifname, _, ns = body.partition("@")
        self.netns = ns or None
        if not self.ifname:
            raise PortError(f"port {self.name}: expected packet:IFNAME[@NETNS], not {self.spec!r}")
        self.sock: socket.socket | None = None
        self.st: Station | None = None

    def start(self) -> None:
        import struct
        try:
            if self.netns:
                # An AF_PACKET socket belongs to the namespace it was created in.
                with _netns.enter(self.netns):
                    self.sock, ifindex = self._open()
            else:
                self.sock, ifindex = self._open()
            mreq = struct.pack(_PACKET_MREQ, ifindex, PACKET_MR_PROMISC, 0, b"")
            self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except (OSError, _netns.NetnsError) as e:
            self.close()
            raise PortError(f"port {self.name}: cannot open {self.spec}: "
                            f"{getattr(e, 'strerror', None) or e}") from None
        self.st = self._station()
        self.st.peer = self._deliver
        self.st.label = self.name
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.say(f"attached {self.name} {self.spec} station {self.st.name}")

    def _open(self) -> tuple[socket.socket, int]:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            s.bind((self.ifname, ETH_P_ALL))
            s.setblocking(False)
            return s, socket.if_nametoindex(self.ifname)
        except OSError:
            s.close()
            raise

    def _readable(self) -> None:
        sock, st = self.sock, self.st
        assert sock is not None and st is not None, "the socket is a reader only while it is bound"
        for _ in range(BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as e:
                self.say(f"detached {self.name} {self.spec}: {e.strerror}")
                self.counters.incr("closed_read_error")
                self.loop.remove_reader(sock.fileno())
                return
            if addr[2] == PACKET_OUTGOING:
                continue            # our own write (or the host's own transmit) seen again
            self.inject_frame(st, data)

    def _deliver(self, frame: bytes) -> None:
        sock = self.sock
        assert sock is not None, "close() unbinds the station before it closes the socket"
        try:
            sock.send(frame)
        except OSError as e:
            # Full queue (EAGAIN/ENOBUFS), interface down or gone: the frame is lost on this
            # port only. Never raise into the medium, which is delivering to other ports too.
            self.counters.incr("transport_drops")
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS):
                self.counters.incr("tx_errors")
            return
        self.counters.incr("tx_frames")

    def close(self) -> None:
        if self.sock is not None:
            if self.st is not None:
                self.loop.remove_reader(self.sock.fileno())
                self.medium.release(self.st)
                self.st = None
            self.sock.close()
            self.sock = None


# ------------------------------------------------------------------------------------------
# pcap replay
# ------------------------------------------------------------------------------------------

class PcapPort(Port):
    """``pcap:FILE``: the frames of a capture (Ethernet link type) are put on the medium
    with the gaps between them that the capture recorded, starting when the wire is ready.
    Frames the medium delivers to this station are counted (``rx_discarded``) and dropped."""

    kind = "pcap"

    def __init__(self, *a, replay_delay: float = 0.0, **kw):
        super().__init__(*a, **kw)
        self.path = self.spec.partition(":")[2]
        self.replay_delay = replay_delay   # seconds between "ready" and the first frame
        self.reader: PcapReader | None = None
        self.st: Station | None = None
        self._it: Iterator[tuple[int, bytes]] | None = None   # the capture's (ns, frame) pairs
        self._handle: asyncio.TimerHandle | None = None        # the next frame's send
        self._first: int | None = None
        self._t0 = 0.0
        self.sent = 0

    def start(self) -> None:
        try:
            self.reader = PcapReader(self.path)
        except (OSError, ValueError) as e:
            raise PortError(f"port {self.name}: cannot read {self.path}: {getattr(e, 'strerror', None) or e}") from None
        if self.reader.linktype != 1:
            self.reader.close()
            raise PortError(f"port {self.name}: {self.path} is not an Ethernet capture "
                            f"(link type {self.reader.linktype})")
        self.st = self._station()
        self.st.peer = self._discard
        self.st.label = self.name
        self._it = iter(self.reader)
        self.say(f"attached {self.name} {self.spec} station {self.st.name}")

    def begin(self) -> None:
        """Start the replay (called once every port is up)."""
        self._t0 = self.loop.time() + self.replay_delay
        self._next()

    def _next(self) -> None:
        assert self._it is not None, "start() opens the capture before begin() replays it"
        try:
            ts, frame = next(self._it)
        except StopIteration:
            self._handle = None
            self.say(f"replayed {self.name} {self.spec}: {self.sent} frames")
            return
        except ValueError as e:
            self._handle = None
            self.counters.incr("bad_capture")
            self.say(f"replayed {self.name} {self.spec}: stopped after {self.sent} frames: {e}")
            return
        if self._first is None:
            self._first = ts
        when = self._t0 + (ts - self._first) / 1e9
        self._handle = self.loop.call_at(when, self._send, frame)

    def _send(self, frame: bytes) -> None:
        assert self.st is not None, "close() cancels the pending send before it frees the station"
        self.sent += 1
        self.inject_frame(self.st, frame)
        self._next()

    def _discard(self, frame: bytes) -> None:
        self.counters.incr("rx_discarded")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.st is not None:
            self.medium.release(self.st)
            self.st = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None


PORT_KINDS = {"unix": StreamPort, "tcp": StreamPort, "tap": TapPort, "packet": PacketPort,
              "pcap": PcapPort}


def make_port(wire: RealtimeWire, spec: str, name: str, medium: str, index: int = 0, **kw) -> Port:
    """The adapter for ``spec`` (its scheme picks the kind)."""
    scheme = spec.partition(":")[0]
    cls = PORT_KINDS.get(scheme)
    if cls is None:
        raise PortError(f"unknown port kind in {spec!r} (use unix:, tcp:, tap:, packet: or pcap:)")
    if cls is TapPort:
        kw["index"] = index
    if cls is not PcapPort:
        kw.pop("replay_delay", None)
    return cls(wire, spec, name, medium, **kw)
