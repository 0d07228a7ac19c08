"""A Linux TAP device: the edge where wirestack meets a real kernel.

A TAP interface is a virtual Ethernet NIC whose "wire" is a file descriptor: every
frame the kernel transmits on the interface can be read from the fd, and every frame
written to the fd is received by the kernel as if it came off the wire.  wirestack's
host plays the remote end of that wire; the kernel (and its ping, curl, iperf3) is
the peer.

Safety: the device is always created *inside* a network namespace (setns(2) around
the TUNSETIFF ioctl), so it is born there and never appears in the root namespace.

Frame format: we ask for IFF_TAP | IFF_NO_PI and do not ask for IFF_VNET_HDR, so each
read()/write() is exactly one Ethernet frame (dst MAC, src MAC, ethertype, payload),
without the 4-byte packet-information prefix, without a virtio-net header and without
the FCS.  That matches the host API (`host.receive(frame, now)`) byte for byte.

Offloads (off by default): with no virtio-net header the kernel has no way to tell us
"checksum still to be done" or "this is a 64 KB super-segment to cut up", so it must hand
us finished frames.  We make that explicit with TUNSETOFFLOAD(0) ("this reader handles no
offloads"), which keeps TSO/UFO/checksum offload off on the kernel side: every TCP
segment we read is at most MTU bytes and carries a full, valid checksum, and the
kernel verifies the checksums of frames we write.  Captures then show wire-size frames.

With ``offload=True`` the device works like a virtio-net NIC: IFF_VNET_HDR puts a 10-byte
``struct virtio_net_hdr`` (<linux/virtio_net.h>) in front of every frame in both
directions (TUNSETVNETHDRSZ), and TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4) tells the kernel
we accept TCP/IPv4 super-segments (up to 64 KB, gso_type TCPV4) that it did not cut to
the MTU, with the TCP checksum left to do (flag NEEDS_CSUM).  read_frames_offload()
strips the header and reports, per frame, whether the kernel vouches for the checksum
(NEEDS_CSUM: made locally and never corrupted; DATA_VALID: already checked), which is
what a NIC driver passes up as CHECKSUM_PARTIAL / CHECKSUM_UNNECESSARY.  Frames we write
carry an all-zero header (no offload requested: our checksums are complete), except TCP
super-segments larger than the MTU, which carry a TSO request (see _vnet_header).

With ``offload=True, tso=False`` only the checksum is offloaded (TUNSETOFFLOAD(TUN_F_CSUM)),
the offload every NIC has: frames stay wire-size both ways, the kernel's TCP segments
arrive with their checksum left to do (and vouched for, as above), and write_partial()
hands over TCP segments whose checksum the kernel fills in (NEEDS_CSUM, GSO_NONE): the
stack cuts its super-segments itself but sums no payload byte in Python.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
import subprocess
from typing import Optional

from ..wire.checksum import finish_checksum
from . import netns as _netns

TUN_PATH = "/dev/net/tun"

# <linux/if_tun.h>: _IOW('T', 202, int) and _IOW('T', 208, unsigned int)
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN = 0x0001
TUNSETVNETHDRSZ = 0x400454D8    # _IOW('T', 216, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01               # we take frames whose TCP/UDP checksum is still to be done
TUN_F_TSO4 = 0x02               # ... and TCP/IPv4 segments larger than the MTU

# struct virtio_net_hdr (legacy layout, host byte order -- little-endian here):
# flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
VNET_HDR = struct.Struct("<BBHHHH")
VNET_HDR_LEN = VNET_HDR.size    # 10
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
VIRTIO_NET_HDR_GSO_TCPV4 = 1
_NO_VNET = bytes(VNET_HDR_LEN)  # flags 0, GSO_NONE: a finished frame
# A TCP/IPv4 frame without IP options whose TCP checksum the kernel is to finish: it sums
# from the TCP header (14 + 20) to the end, into the field at offset 16, which holds the
# pseudo-header sum (as CHECKSUM_PARTIAL does).  No cut (GSO_NONE).
_CSUM_VNET = VNET_HDR.pack(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16)
OFFLOAD_BUFSIZE = VNET_HDR_LEN + 14 + 4 + 65535   # header + Ethernet (+ VLAN) + largest IP datagram

IFNAMSIZ = 16  # <linux/if.h>, including the terminating NUL

# struct ifreq is 40 bytes on 64-bit Linux: a 16-byte name and a 24-byte union of
# which TUNSETIFF uses the leading short (ifr_flags).
_IFREQ = struct.Struct("16sH22x")

# Read buffer: one frame of at most MTU + 14 (Ethernet) + 4 (a VLAN tag) bytes, since
# with offloads off the kernel never hands us anything larger.  os.read allocates
# the full size before shrinking the result, so a tight buffer is measurably faster
# than a 64 KB one (about 30% more frames/s in a flood on the development machine).
# A frame larger than the buffer would be cut short, so the buffer follows the MTU
# given to configure_peer().
DEFAULT_MTU = 1500


def _bufsize_for(mtu: int) -> int:
    return max(2048, mtu + 18)


class TapError(OSError):
    """The TAP device could not be opened or configured; str() is one printable sentence."""


class TapDevice:
    """One TAP interface, seen from the "wire" side.

        tap = TapDevice("ws0", netns="ws-lab")
        tap.configure_peer("198.18.0.1/24")   # the kernel's address on that wire
        loop.add_reader(tap.fileno(), on_readable)
        ...
        for frame in tap.read_frames(64):     # drain what is queued, in one go
            host.receive(frame, now)
        tap.write(frame)

    The fd is non-blocking.  The interface disappears when the device is closed
    (we never set TUNSETPERSIST), so a crashed process leaves nothing behind.
    """

    def __init__(self, name: str = "ws0", netns: Optional[str] = None,
                 bufsize: Optional[int] = None, tun: bool = False,
                 offload: bool = False, tso: bool = True):
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
            raise TapError(f"invalid interface name {name!r} (1-15 characters, no '/' or spaces)")
        self.netns = netns
        # tun=True: a TUN device (IFF_TUN), each read/write one bare IP datagram, no Ethernet.
        self.tun = tun
        if tun and offload:
            raise TapError("offloads are for TAP devices (virtio-net headers carry Ethernet frames)")
        self.offload = offload
        # Only the checksum offloaded: wire-size frames both ways (see write_partial).
        self.csum_only = offload and not tso
        self.mtu = DEFAULT_MTU   # the kernel side's MTU: where a TSO super-segment is cut
        self.bufsize = bufsize or (OFFLOAD_BUFSIZE if offload else _bufsize_for(DEFAULT_MTU))
        self.fd = -1
        self.rx_frames = 0
        self.tx_frames = 0
        self.tx_dropped = 0  # writes refused by the kernel (queue full): like a NIC drop
        if netns is None:
            # Allowed for a user who set up their own namespace (e.g. running the
            # whole process under `ip netns exec`); tests and the CLI always pass one.
            self.name = self._open(name)
        else:
            try:
                with _netns.enter(netns):
                    self.name = self._open(name)
            except _netns.NetnsError as e:
                raise TapError(str(e)) from None

    # -- opening ---------------------------------------------------------------------

    def _open(self, name: str) -> str:
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise TapError(f"{TUN_PATH} does not exist: load the 'tun' kernel module "
                           "(modprobe tun) or run where TUN/TAP is available") from None
        except PermissionError:
            raise TapError(f"no permission to open {TUN_PATH}: run as root "
                           "(or with CAP_NET_ADMIN)") from None
        try:
            flags = (IFF_TUN if self.tun else IFF_TAP) | IFF_NO_PI | (IFF_VNET_HDR if self.offload else 0)
            ifr = _IFREQ.pack(name.encode(), flags)
            try:
                res = fcntl.ioctl(fd, TUNSETIFF, ifr)
            except PermissionError:
                raise TapError(f"not allowed to create TAP device {name!r}: "
                               "needs CAP_NET_ADMIN (run as root)") from None
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise TapError(f"interface {name!r} already exists and is busy; "
                                   "choose another name") from None
                if e.errno == errno.EINVAL:
                    raise TapError(f"interface {name!r} exists and is not a "
                                   f"{'TUN' if self.tun else 'TAP'} device") from None
                raise TapError(f"could not create TAP device {name!r}: {e.strerror}") from None
            # The kernel may have filled in a name (e.g. for "tap%d").
            real = _IFREQ.unpack(res)[0].rstrip(b"\0").decode()
            if self.offload:
                try:
                    fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
                    fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM if self.csum_only else TUN_F_CSUM | TUN_F_TSO4)
                except OSError as e:
                    raise TapError(f"TAP device {name!r}: the kernel refused the offloads "
                                   f"(TUNSETOFFLOAD): {e.strerror}") from None
            else:
                try:
                    # We speak no virtio-net header, so we can take no offloads: the
                    # kernel must segment and checksum everything before handing it over.
                    fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
                except OSError:
                    pass  # the default for a fresh TAP is already "no offloads"
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return real

    # -- the frame path ----------------------------------------------------------------

    def fileno(self) -> int:
        return self.fd

    def read_frame(self) -> Optional[bytes]:
        """One frame, or None when nothing is queued."""
        try:
            frame = os.read(self.fd, self.bufsize)
        except BlockingIOError:
            return None
        self.rx_frames += 1
        return frame[VNET_HDR_LEN:] if self.offload else frame

    def read_frames(self, max_frames: int = 64) -> list[bytes]:
        """Every queued frame up to max_frames, stopping at EAGAIN.

        Batching matters: one wake-up of the event loop per frame costs more than
        the read itself, so a readable fd is drained in one go, and the caller can
        process the batch before flushing the stack's output once.
        """
        if self.offload:
            return [frame for frame, _ in self.read_frames_offload(max_frames)]
        frames = []
        read = os.read
        fd, size = self.fd, self.bufsize
        try:
            for _ in range(max_frames):
                frames.append(read(fd, size))
        except BlockingIOError:
            pass
        except OSError as e:
            # EBADFD/EIO when the interface went away under us (deleted namespace).
            if not frames:
                raise TapError(f"reading from TAP {self.name!r} failed: {e.strerror}") from None
        self.rx_frames += len(frames)
        return frames

    def read_frames_offload(self, max_frames: int = 64) -> list[tuple[bytes, bool]]:
        """Like read_frames, for a device opened with offload=True: (frame, checksum_ok)
        pairs, the virtio-net header stripped.  checksum_ok is True when the kernel says
        the transport checksum needs no check (NEEDS_CSUM or DATA_VALID); a frame may be
        a TCP super-segment larger than the MTU (gso_type TCPV4), which is passed up whole,
        as a NIC's receive offload does."""
        out = []
        read = os.read
        fd, size = self.fd, self.bufsize
        try:
            for _ in range(max_frames):
                data = read(fd, size)
                flags = data[0]
                frame = data[VNET_HDR_LEN:]
                if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM and not _is_ipv4_tcp(frame):
                    # Only TCP takes the "checksum vouched for" hint; for anything else
                    # (UDP) do what the kernel would do without the offload: fill it in.
                    frame = finish_checksum(frame, *VNET_HDR.unpack_from(data)[4:])
                    flags = 0
                out.append((frame, bool(flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM
                                                 | VIRTIO_NET_HDR_F_DATA_VALID))))
        except BlockingIOError:
            pass
        except OSError as e:
            if not out:
                raise TapError(f"reading from TAP {self.name!r} failed: {e.strerror}") from None
        self.rx_frames += len(out)
        return out

    def write(self, frame) -> bool:
        """Hand one frame to the kernel.  False (and counted) if the kernel dropped it.

        A TAP write never blocks for long: the kernel queues the frame on its input
        backlog or drops it, exactly like a NIC whose receive ring is full.
        """
        try:
            if self.offload:
                # writev: the header and the frame leave in one syscall without a copy.
                os.writev(self.fd, (self._vnet_header(frame) if len(frame) > self.mtu + 14
                                    else _NO_VNET, frame))
            else:
                os.write(self.fd, frame)
        except OSError as e:
            self._write_failed(e)
            return False
        self.tx_frames += 1
        return True

    def write_many(self, frames) -> int:
        """Several frames (a TAP takes one per write(2)) in one call from Python: the
        pieces of a segmented super-segment.  Returns how many the kernel took."""
        if self.offload:
            return sum(self.write(frame) for frame in frames)
        return self._write_each(os.write, frames)

    def write_partial(self, pieces) -> int:
        """TCP/IPv4 frames, each given as (headers, payload) with the TCP checksum left to
        the kernel (its field holding the pseudo-header sum: ``Offload.segment_partial``),
        on a device with checksum offload: one writev(2) each, the payload not copied.
        Returns how many the kernel took."""
        if not self.offload:
            raise TapError(f"TAP {self.name!r} has no checksum offload (open it with offload=True)")
        vnet = _CSUM_VNET
        return self._write_each(os.writev, [(vnet, headers, payload) for headers, payload in pieces])

    def _write_each(self, call, items) -> int:
        """``call(fd, item)`` for each item, one frame each (os.write, os.writev); a refused
        one counted or raised (``_write_failed``). Returns how many the kernel took."""
        fd = self.fd
        n = 0
        try:
            for item in items:
                try:
                    call(fd, item)
                except OSError as e:
                    self._write_failed(e)       # (raises when the device is gone)
                    continue
                n += 1
        finally:
            self.tx_frames += n                 # what went out before a TapError, too
        return n

    def _write_failed(self, e: OSError) -> None:
        """A refused write: counted as a drop (queue full, a malformed frame: a local bug),
        or TapError when the device itself is gone."""
        if isinstance(e, BlockingIOError) or e.errno in (errno.ENOBUFS, errno.ENOMEM, errno.EINVAL):
            self.tx_dropped += 1
            return
        raise TapError(f"writing to TAP {self.name!r} failed: {e.strerror}") from None

    send = write   # the Device contract's verb for "frame out" (wirestack.contracts)

    def _vnet_header(self, frame) -> bytes:
        """The virtio-net header of a TCP/IPv4 super-segment (larger than the MTU): ask the
        kernel to cut it into MTU-sized segments (GSO_TCPV4, each carrying gso_size payload
        bytes and a copy of the headers) and to finish each checksum from the pseudo-header
        sum in the field (NEEDS_CSUM at csum_start + csum_offset) -- a NIC's TSO."""
        ihl = (frame[14] & 0x0F) * 4
        thl = (frame[14 + ihl + 12] >> 4) * 4
        return VNET_HDR.pack(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4,
                             14 + ihl + thl, self.mtu - ihl - thl, 14 + ihl, 16)

    def close(self) -> None:
        """Close the fd; the kernel deletes the (non-persistent) interface."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __enter__(self) -> "TapDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        where = f" netns={self.netns}" if self.netns else ""
        return f"<TapDevice {self.name}{where} fd={self.fd}>"

    # -- the kernel's side of the wire ---------------------------------------------------

    def _ip(self, *args: str) -> None:
        argv = ["ip"] + (["-n", self.netns] if self.netns else []) + list(args)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True)
        except FileNotFoundError:
            raise TapError("the 'ip' command (iproute2) is not installed") from None
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise TapError(f"'{' '.join(argv)}' failed: {lines[-1] if lines else proc.returncode}")

    def _disable_ipv6(self) -> None:
        # IPv6 would fill the trace with router/neighbour solicitations and MLD
        # reports the learner did not ask for; wirestack speaks IPv4 only.
        key = f"net.ipv6.conf.{self.name}.disable_ipv6"
        argv = ["sysctl", "-q", "-w", f"{key}=1"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        try:
            proc = subprocess.run(argv, capture_output=True, text=True)
            ok = proc.returncode == 0
        except FileNotFoundError:
            ok = False
        if not ok:
            # No sysctl binary (procps missing), or IPv6 compiled out: write the
            # proc file directly from inside the namespace, if it exists at all.
            fn = f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6"
            try:
                if self.netns:
                    with _netns.enter(self.netns):
                        _write_if_exists(fn, "1")
                else:
                    _write_if_exists(fn, "1")
            except OSError:
                pass

    def configure_peer(self, ip_cidr: Optional[str] = None, up: bool = True,
                       mtu: Optional[int] = None) -> None:
        """Configure the kernel's end: `ip addr add IP_CIDR dev NAME`, IPv6 off, link up."""
        self._disable_ipv6()
        if mtu is not None:
            self._ip("link", "set", "dev", self.name, "mtu", str(mtu))
            self.mtu = mtu
            self.bufsize = max(self.bufsize, _bufsize_for(mtu) + (VNET_HDR_LEN if self.offload else 0))
        if ip_cidr:
            self._ip("addr", "add", ip_cidr, "dev", self.name)
        if up:
            self._ip("link", "set", "dev", self.name, "up")

    def kernel_mac(self) -> bytes:
        """The MAC address the kernel uses on this interface (6 bytes)."""
        argv = ["ip"] + (["-n", self.netns] if self.netns else []) + ["-j", "link", "show", "dev", self.name]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TapError(f"cannot read the MAC address of {self.name!r}: {proc.stderr.strip()}")
        info = json.loads(proc.stdout)[0]
        return bytes(int(x, 16) for x in info["address"].split(":"))


def _is_ipv4_tcp(frame: bytes) -> bool:
    return len(frame) >= 34 and frame[12:14] == b"\x08\x00" and frame[23] == 6


def _write_if_exists(fn: str, value: str) -> None:
    if os.path.exists(fn):
        with open(fn, "w") as f:
            f.write(value)
