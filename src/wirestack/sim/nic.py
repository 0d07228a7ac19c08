"""The simulated network adapter: the edge between a host (frames without FCS) and a medium
(frames with FCS, as they travel on a real wire).

Like adapter hardware it pads short frames to the Ethernet minimum, appends the FCS on
transmit, and on receive drops runts and frames whose FCS does not check, filters by
destination MAC, and strips the FCS before handing the frame up.

With an :class:`~wirestack.sim.offload.Offload` (off by default, so captures show what is
on the wire) it also does what offloading NICs do: on transmit it cuts TCP super-segments
into MTU-sized frames (TSO); on receive it holds the frames that arrive within
``rx_hold_ns`` of the first (interrupt moderation, ``ethtool -C rx-usecs``; at most
``rx_budget`` frames, a NAPI poll's budget) and hands them up merged (GRO).
"""

from __future__ import annotations

import zlib
from typing import Callable

from wirestack.sim.offload import Offload
from wirestack.trace.counters import Counters
from wirestack.wire.checksum import FCS_RESIDUE

# IEEE 802.3 §3.2.9: the FCS is the CRC-32 of the frame; see wirestack.wire.checksum.
FCS_LEN = 4
ETH_HLEN = 14
MIN_FRAME = 60          # minimum frame without FCS (64 with it); shorter frames are padded
_PAD = bytes(MIN_FRAME)




class Nic:
    """A simulated Ethernet adapter.

    ``on_receive(frame)`` gets each accepted frame without its FCS. ``counters`` (a
    :class:`Counters`, typically the host's) receives the error counts ``eth.rx_runts``,
    ``eth.rx_fcs_errors``, ``eth.rx_not_for_us``, ``eth.rx_dropped_down``,
    ``eth.tx_dropped_down``, ``eth.tx_no_carrier`` and, on a hub, ``eth.tx_collisions`` and
    (CSMA/CD) ``eth.tx_aborted_collisions``. Plain frame/byte totals are attributes (``tx_frames`` ...),
    not counters, to keep the per-frame cost down.

    ``check_fcs=False`` strips the FCS without checking it, so a corrupted frame travels on
    to the IP/UDP/TCP checksums (to show what those catch). ``promiscuous=True`` accepts
    every frame regardless of destination MAC (what a capture tool asks for).

    ``offload``: TSO and GRO (see the module docstring). Taps then see what the host handed
    the NIC and what the NIC handed up (super-segments, merged segments, as tcpdump on an
    offloading Linux host does), the medium the wire frames; a merged frame goes to
    ``on_receive(frame, checksum_ok)`` (the NIC checked every piece's checksum).
    """

    rx_budget = 64      # frames per receive batch at most (bounded memory; NAPI's weight)

    def __init__(self, sched, name: str, mac: bytes, on_receive: Callable[[bytes], object] | None = None,
                 counters: Counters | None = None, check_fcs: bool = True,
                 promiscuous: bool = False, pad: bool = True, offload: Offload | None = None,
                 rx_hold_ns: int = 0):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
        self.sched = sched
        self.name = name
        self.mac = bytes(mac)
        self.on_receive = on_receive
        self.counters = counters if counters is not None else Counters()
        self.check_fcs = check_fcs
        self.promiscuous = promiscuous
        self.pad = pad
        self.up = True
        self.medium = None
        self._tx: Callable[[bytes], object] | None = None
        self._taps: list[Callable[[int, str, bytes], object]] = []
        self._frame_taps: list[Callable[[int, str, int | None, bytes], object]] = []
        self.tx_frames = self.tx_bytes = self.rx_frames = self.rx_bytes = 0
        if rx_hold_ns < 0:
            raise ValueError(f"negative rx_hold_ns {rx_hold_ns}")
        self.offload = offload
        self.rx_hold_ns = rx_hold_ns
        self._rx_batch: list[tuple[bytes, int]] = []
        self._rx_flush_at = None

    def __repr__(self) -> str:
        return f"<Nic {self.name} {self.mac.hex(':')}>"

    # -- wiring (called by the media) ------------------------------------------------------

    def attach(self, medium, tx: Callable[[bytes], object]) -> None:
        if self._tx is not None:
            raise RuntimeError(f"NIC {self.name} is already attached to {self.medium!r}")
        self.medium = medium
        self._tx = tx

    def add_tap(self, fn: Callable[[int, str, bytes], object]) -> None:
        """``fn(now, "tx"|"rx", frame_without_fcs)`` for every frame this NIC sends or accepts
        (tx before padding, as a capture on the host would see it)."""
        self._taps.append(fn)

    def add_frame_tap(self, fn: Callable[[int, str, int | None, bytes], object]) -> None:
        """``fn(now, "tx"|"rx", frame_id, frame_without_fcs)``: like :meth:`add_tap`, plus the
        frame's decision-log id (None if the medium gives none), so a capture at this NIC can
        say what the wire did to each frame. tx is reported once the medium has taken it."""
        self._frame_taps.append(fn)

    def remove_tap(self, fn) -> None:
        self._taps.remove(fn)

    # -- transmit --------------------------------------------------------------------------

    def send(self, frame: bytes) -> bool:
        """Put ``frame`` (Ethernet header + payload, no FCS) on the medium. Returns False if
        it could not be sent (NIC down or not attached; counted)."""
        if not self.up:
            self.counters.incr("eth.tx_dropped_down")
            return False
        tx = self._tx
        if tx is None:
            self.counters.incr("eth.tx_no_carrier")
            return False
        if type(frame) is not bytes:
            frame = bytes(frame)
        if self._taps:
            now = self.sched.now
            for fn in self._taps:
                fn(now, "tx", frame)
        offload = self.offload
        if offload is not None and len(frame) > offload.mtu + ETH_HLEN:
            pieces = offload.segment(frame)
            if pieces is not None:
                return self._send_pieces(frame, pieces, tx)
        if len(frame) < MIN_FRAME and self.pad:
            # Adapters pad runt payloads (e.g. a 42-byte ARP) to the 64-byte minimum that
            # CSMA/CD needs to detect collisions (IEEE 802.3 §4.2.3.3).
            frame = frame + _PAD[len(frame):]
        self.tx_frames += 1
        self.tx_bytes += len(frame)
        if self._frame_taps:
            fid = tx(frame + zlib.crc32(frame).to_bytes(4, "little"))
            now = self.sched.now
            for fn in self._frame_taps:
                fn(now, "tx", fid, frame)
            return True
        tx(frame + zlib.crc32(frame).to_bytes(4, "little"))
        return True

    def _send_pieces(self, frame: bytes, pieces: list[bytes], tx) -> bool:
        """TSO: the wire frames cut from one super-segment; a capture at this NIC shows the
        super-segment once (with the first frame's decision-log id)."""
        crc32 = zlib.crc32
        first = None
        for piece in pieces:
            self.tx_frames += 1
            self.tx_bytes += len(piece)
            fid = tx(piece + crc32(piece).to_bytes(4, "little"))
            if first is None:
                first = fid
        if self._frame_taps:
            now = self.sched.now
            for fn in self._frame_taps:
                fn(now, "tx", first, frame)
        return True

    # -- receive (called by the medium) ----------------------------------------------------

    def deliver(self, data: bytes, fid: int, medium) -> None:
        if not self.up:
            self.counters.incr("eth.rx_dropped_down")
            self._drop(medium, fid, "nic_down")
            return
        n = len(data)
        if n < ETH_HLEN + FCS_LEN:
            self.counters.incr("eth.rx_runts")
            self._drop(medium, fid, "runt", size=n)
            return
        if self.check_fcs and zlib.crc32(data) != FCS_RESIDUE:
            self.counters.incr("eth.rx_fcs_errors")
            self._drop(medium, fid, "fcs_drop")
            return
        # The address filter comes after the FCS check, so a frame whose destination MAC was
        # damaged in transit is counted as an FCS error, not silently ignored.
        if not self.promiscuous and not (data[0] & 1) and data[:6] != self.mac:
            self.counters.incr("eth.rx_not_for_us")
            log = medium.log
            if log.full:
                log.record(self.sched.now, fid, medium.name, "not_for_us", by=self.name)
            return
        frame = data[:-4]
        self.rx_frames += 1
        self.rx_bytes += n - 4
        if self.offload is not None:
            batch = self._rx_batch
            batch.append((frame, fid))
            if len(batch) >= self.rx_budget:
                if self._rx_flush_at is not None:
                    self._rx_flush_at.cancel()
                self._rx_flush()
            elif len(batch) == 1:
                self._rx_flush_at = self.sched.call_at(self.sched.now + self.rx_hold_ns, self._rx_flush)
            return
        if self._taps:
            now = self.sched.now
            for fn in self._taps:
                fn(now, "rx", frame)
        if self._frame_taps:
            now = self.sched.now
            for fn in self._frame_taps:
                fn(now, "rx", fid, frame)
        if self.on_receive is not None:
            self.on_receive(frame)

    def _rx_flush(self) -> None:
        """The end of a receive batch: GRO merges it, the host gets the result in order."""
        self._rx_flush_at = None
        batch, self._rx_batch = self._rx_batch, []
        if not self.up:     # taken down while it held them: they are lost with the ring
            for _ in batch:
                self.counters.incr("eth.rx_dropped_down")
            return
        now = self.sched.now
        for frame, checksum_ok, first in self.offload.coalesce([f for f, _ in batch]):
            for fn in self._taps:
                fn(now, "rx", frame)
            for fn in self._frame_taps:
                fn(now, "rx", batch[first][1], frame)
            if self.on_receive is not None:
                self.on_receive(frame, checksum_ok)

    def _drop(self, medium, fid: int, event: str, **fields) -> None:
        log = medium.log
        if log.enabled:
            log.record(self.sched.now, fid, medium.name, event, by=self.name, **fields)
