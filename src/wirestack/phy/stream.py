"""QEMU's stream framing: Ethernet frames over a Unix or TCP stream socket.

This is how a process plugs into `wirestack wire` (and how a QEMU VM with
``-netdev stream,...`` talks to one): each frame travels as a 4-byte big-endian length
followed by the Ethernet frame itself (destination MAC first, no FCS, no padding added).
A stream has no frame boundaries of its own, so the reader keeps the bytes of a partial
frame until the rest arrives.

* :class:`FrameDecoder` is the sans-I/O half: ``feed(bytes) -> [frames]``; a length of 0 or
  over ``max_frame`` (65,535: the largest length QEMU's own code accepts, and far more than
  any Ethernet frame) raises :class:`FramingError`, since after a bad length the stream
  can never find a frame boundary again.
* :class:`StreamDevice` is a client connection with the device interface the real-time
  runtime uses for a TAP (``fileno``, ``read_frames``, ``write``, ``close``), so a
  wirestack host attaches to a wire exactly as it attaches to a TAP.
"""

from __future__ import annotations

import os
import socket
import struct

MAX_FRAME = 65535
_LEN = struct.Struct(">I")


class FramingError(ValueError):
    """The peer broke the framing (bad length prefix): the connection must be closed.
    ``frames`` holds the complete frames that arrived before the bad prefix."""

    def __init__(self, message: str, frames: list[bytes] | None = None):
        super().__init__(message)
        self.frames = frames or []


def encode(frame) -> bytes:
    """One frame as it travels on the stream: length prefix + frame."""
    return _LEN.pack(len(frame)) + bytes(frame)


class FrameDecoder:
    """Cuts a byte stream into frames. Holds at most one partial frame (<= 4 + max_frame
    bytes), so memory is bounded whatever the peer sends."""

    __slots__ = ("max_frame", "_buf")

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame waiting for the rest."""
        return len(self._buf)

    def feed(self, data) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        n = len(buf)
        unpack = _LEN.unpack_from
        while n - pos >= 4:
            (length,) = unpack(buf, pos)
            if length == 0 or length > self.max_frame:
                del buf[:]
                raise FramingError(f"bad length prefix {length} (must be 1..{self.max_frame})", frames)
            end = pos + 4 + length
            if end > n:
                break
            frames.append(bytes(buf[pos + 4:end]))
            pos = end
        if pos:
            del buf[:pos]
        return frames


def parse_spec(spec: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """``unix:PATH`` or ``tcp:HOST:PORT`` -> (address family, socket address): the path
    (a str) for AF_UNIX, a (host, port) pair for AF_INET."""
    kind, _, rest = spec.partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return socket.AF_INET, (host, int(port))
    raise ValueError(f"not a stream address: {spec!r} (use unix:PATH or tcp:127.0.0.1:PORT)")


class StreamDevice:
    """A client connection to a wire's stream port, usable wherever a TAP device is.

    Reads are non-blocking (the fd is a reader on the event loop). Writes wait at most
    ``send_timeout`` seconds for room in the socket buffer: if the wire is that far behind,
    it is stalled and the write fails with :class:`OSError` instead of hanging forever.
    A closed wire makes ``read_frames`` raise :class:`ConnectionError`.
    """

    offload = False   # plain frames: no virtio-net header (wirestack.contracts.PolledDevice)

    def __init__(self, spec: str, send_timeout: float = 5.0, connect_timeout: float = 5.0):
        family, addr = parse_spec(spec)
        self.spec = spec
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(addr)
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(send_timeout)   # also makes the fd O_NONBLOCK for os.read
        except OSError as e:
            sock.close()
            raise ConnectionError(f"cannot connect to wire {spec}: {e.strerror or e}") from None
        self.sock = sock
        self.fd = sock.fileno()
        self.decoder = FrameDecoder()
        self.rx_frames = self.tx_frames = 0
        self.tx_dropped = 0

    def fileno(self) -> int:
        return self.fd

    def read_frames(self, max_frames: int = 64) -> list[bytes]:
        frames: list[bytes] = []
        read = os.read
        for _ in range(max_frames):
            try:
                data = read(self.fd, 262144)
            except BlockingIOError:
                break
            if not data:
                if frames:
                    break
                raise ConnectionError(f"wire {self.spec} closed the connection")
            frames += self.decoder.feed(data)
            if len(frames) >= max_frames:
                break
        self.rx_frames += len(frames)
        return frames

    def write(self, frame) -> bool:
        try:
            self.sock.sendall(encode(frame))
        except socket.timeout:
            raise OSError(f"wire {self.spec} stalled: no room to send for "
                          f"{self.sock.gettimeout()} s") from None
        except (BrokenPipeError, ConnectionResetError):
            # The wire went away; the reader sees the end of the stream and stops the host.
            self.tx_dropped += 1
            return False
        self.tx_frames += 1
        return True

    send = write   # the Device contract's verb for "frame out" (wirestack.contracts)

    def close(self) -> None:
        if self.fd >= 0:
            self.sock.close()
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __enter__(self) -> "StreamDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StreamDevice {self.spec} fd={self.fd}>"
