"""The real-time runtime: the same sans-I/O host, driven by a TAP device and the monotonic clock.

One asyncio loop does everything, with no thread hops: the TAP fd is a reader on the loop;
when it is readable we drain a batch of frames into the host, then ask the host for its
output once (so a burst of incoming segments produces one round of ACKs and data), and
arm a loop timer for the host's next deadline.

A host with several interfaces (a router) gets one device per interface, ``devices[i]``
carrying interface ``i``: each is a reader on the same loop.

ACK policy under bulk receive: TCP answers a batch, not each segment (the layer's
``defer_output``), so N in-order full-size segments read in one wake-up get one cumulative
ACK.  RFC 5681 §4.2 says a receiver SHOULD ACK at least every second full-sized segment;
this is a deliberate stretch ACK of at most BATCH segments, the same thing a Linux
receiver does behind GRO (one ACK per aggregated super-segment of up to 64 KB).  It cuts
the ACK frames we write during a bulk receive from one per two segments to one per batch,
and every one of those writes runs the kernel's TCP input for the ACK in our process.  A
sender that counts ACKed bytes (RFC 3465, as Linux does) grows its window just the same.
Single segments (request/response) still get the delayed-ACK rule of RFC 1122 4.2.3.2:
answered by the reply or within delack_ms.
Segments above a hole are not batched: each still gets its immediate duplicate ACK
(without SACK, one per full-sized piece of a segment that GRO merged: see
tcp/segment_arrives.py).

Answer first: the first frame of a wake-up is read alone, and when GRO would not merge it
and its sender waits on our answer (a SYN, a request's last segment, ARP, an ICMP echo:
``answer_first``) the host takes it and the answer is written at once, before the read
that finds the queue empty and before the batch's bookkeeping -- a connect(), a request
or a ping then waits for the least work we can do.  A listener's SYN,ACK leaves even
earlier: from inside the host, before the child's TCB is made (``TcpLayer.push_output``).
Other TCP data and ACKs are read as a batch first, as above, and so is everything a
forwarding host reads (mostly others' traffic).

GRO and GSO (``gro=True``, ``gso=True``; ``wirestack serve`` turns both on for a plain TAP):
the software offloads Linux runs for a NIC that has none.  TCP costs the same per segment
whatever its size, so the frames of one wake-up are merged before IP sees them (GRO: the
in-order data of one flow becomes one segment of up to 64 KB, every frame's checksums
checked on its own, see sim/offload.py), of a run of one connection's pure ACKs that each
acknowledge more only the last is passed up (ACK filtering, RFC 3449 §5.2.1,
``thin_acks``), and TCP hands over super-segments that are cut into MTU-sized frames just
before they are written (GSO).  The wire and the kernel see exactly the frames they would
see without; TCP, counters and the event log see fewer, larger segments.  Taps (``--pcap``,
``--trace``) see the frames as read and as written -- a Linux tcpdump would show the merged
segments on receive instead.  A host that forwards gets no GRO (a merged segment would be
forwarded whole).
"""

from __future__ import annotations

import asyncio
import time

from ..contracts import PolledDevice
from ..iface import Host
from ..sim.offload import Offload, thin_acks
from ..wire.checksum import finish_checksum
from .base import RuntimeHost
from .driver import Driver

BATCH = 64    # frames read per wake-up before the host is asked for output (and ACKs)


def tcp_offset(frame: bytes, layer3: bool) -> int | None:
    """Where the TCP header starts in a frame (a bare IP datagram on a layer-3 interface)
    that is TCP over IPv4 and long enough to hold TCP's flags, else None: ARP, ICMP, UDP,
    or too short to tell (IP or TCP counts those)."""
    ip = 0 if layer3 else 14
    if not layer3 and frame[12:14] != b"\x08\x00":
        return None
    if len(frame) < ip + 20 or frame[ip + 9] != 6:
        return None
    tcp = ip + (frame[ip] & 15) * 4
    return tcp if len(frame) >= tcp + 14 else None


def answer_first(frame: bytes, layer3: bool) -> bool:
    """Whether the first frame of a wake-up goes to the host on its own, answered before
    the rest of the queue is read: a frame that GRO would not merge with what follows it
    and whose sender waits on our answer -- a TCP SYN (the peer's connect() returns with
    our SYN,ACK), TCP data with PSH (the end of what the peer wrote: a request; GRO ends
    a run after it anyway) and anything that is not TCP (ARP, an ICMP echo, UDP).  Other
    TCP data and ACKs wait for the batch, which merges and thins them."""
    tcp = tcp_offset(frame, layer3)
    if tcp is None:
        return True                       # not TCP, or too short to tell
    flags = frame[tcp + 13]
    if flags & 0x02:
        return True                       # SYN
    # PSH on a segment that carries data (IP total length beyond both headers)
    ip = 0 if layer3 else 14
    return bool(flags & 0x08) and (frame[ip + 2] << 8 | frame[ip + 3]) > tcp - ip + (frame[tcp + 12] >> 4) * 4


SMALL_BATCH = 8   # batches up to this size hand a new connection's SYN to the host first


def syns_first(frames: list, layer3: bool, pairs: bool = False) -> list:
    """A small batch in which a connection request (SYN without ACK) sits behind segments
    of other connections -- typically the previous connection's FIN and ACK, which the same
    client sent just before its next connect() -- with those SYNs moved to the front: the
    peer's connect() waits on the SYN,ACK, nobody waits on the rest.  Only across
    connections: a SYN behind a segment of its own 4-tuple keeps its place, and a batch
    with anything that is not TCP/IPv4 (an ARP reply the answer may need) keeps its order.
    ``pairs``: the items are (frame, checksum_ok) pairs (a device with offloads)."""
    # First only a look for a request, so that a transfer's data and ACKs cost little.
    for item in frames:
        f = item[0] if pairs else item
        tcp = tcp_offset(f, layer3)
        if tcp is None:
            return frames
        if f[tcp + 13] & 0x12 == 0x02:
            break
    else:
        return frames
    ip = 0 if layer3 else 14
    seen = set()
    first, rest = [], []
    for item in frames:
        f = item[0] if pairs else item
        tcp = tcp_offset(f, layer3)
        if tcp is None:
            return frames
        flow = (f[ip + 12:ip + 20], f[tcp:tcp + 4])
        if f[tcp + 13] & 0x12 == 0x02 and flow not in seen:
            first.append(item)
        else:
            rest.append(item)
        seen.add(flow)
    return first + rest if first and rest else frames


class RealtimeHost(RuntimeHost):
    def __init__(self, host: Host, device: PolledDevice,
                 loop: asyncio.AbstractEventLoop | None = None, taps=(), more_devices=(),
                 gro: bool = False, gso: bool = False):
        self.host = host
        # Answer a batch of segments once, at the driver's service() that follows it (see BATCH).
        host.tcp.defer_output = True
        self.device = device
        self.devices: list[PolledDevice] = [device, *more_devices]   # devices[i]: interface i
        # offloaded[i]: interface i's device does TSO/GRO in the kernel and hands out
        # (frame, checksum_ok) pairs (read_frames_offload); fixed when it was opened.
        self.offloaded = [bool(getattr(d, "offload", False)) for d in self.devices]
        self.offload = any(self.offloaded)
        # csum_only[i]: ... but only the checksum (wire-size frames both ways): GRO and GSO
        # stay ours, without summing what the device vouches for or finishes.
        self.csum_only = [bool(getattr(d, "csum_only", False)) for d in self.devices]
        self.loop = loop or asyncio.get_event_loop()
        self.taps = list(taps)       # fn(now_ns, direction 'rx'|'tx', frame)
        # Software offloads, per interface, on devices that do not offload themselves.
        if gro and host.config.forwarding:
            # A merged segment of up to 64 KB would be forwarded as one datagram and refused
            # with "fragmentation needed" (DF): Linux re-segments it, this router does not.
            raise ValueError("gro=True is for end hosts: this host forwards (HostConfig.forwarding)")
        mtus = [host.interfaces[i].mtu if not self.offloaded[i] or self.csum_only[i] else 0
                for i in range(len(self.devices))]
        self.gro = [Offload(mtu) if gro and mtu else None for mtu in mtus]
        self.layer3 = [host.interfaces[i].layer3 for i in range(len(self.devices))]
        # A router's frames are mostly someone else's: it reads them as batches only.
        self.first_alone = not host.config.forwarding
        self.gso = [Offload(mtu) if gso and mtu else None for mtu in mtus]
        self.acks_thinned = 0        # pure ACKs GRO left out: a later one said more (thin_acks)
        for ifindex, cut in enumerate(self.gso):
            if cut is not None or (self.offloaded[ifindex] and not self.csum_only[ifindex]):
                # TSO: the kernel behind an offloading TAP, or our GSO, cuts what TCP sends
                # (not the kernel behind a checksum-only TAP: its frames stay wire-size).
                host.enable_tso(ifindex)
        sends = [d.send for d in self.devices]
        driver_taps = self.taps
        if any(self.gso):
            # The frames written are the pieces: the taps see those, not the super-segment.
            sends = [self._sender(dev, cut) for dev, cut in zip(self.devices, self.gso)]
            driver_taps = []
        ev = self.loop
        # A loop timer that fires early is kept (see runtime/driver.py); a deadline already
        # due is served 1 µs later.
        self.driver = Driver(host, time.monotonic_ns, sends,
                             ev.call_soon, lambda t, fn: ev.call_at(t / 1e9, fn),
                             soonest=1000, exact=False, taps=driver_taps)
        self.driver.active = False
        # A listener's SYN,ACK is written as soon as it is built, before the child's TCB.
        host.tcp.push_output = self.driver.send_now
        self._woken = False          # a task was made runnable during this wake-up (wake())
        self._started = False
        self.device_error: OSError | None = None   # why the device stopped (wire closed ...)

    def now_ns(self) -> int:
        return time.monotonic_ns()   # asyncio's loop.time() is time.monotonic(): one clock

    def _sender(self, device: PolledDevice, cut: Offload | None):
        """The device's ``send`` for the driver, with GSO (``cut``) and the taps in front of
        it; the pieces of a super-segment go to the device in one call when it can take
        several (``write_many``). On a device that offloads only the checksum, the pieces
        leave with their TCP checksum for it to finish (``write_partial``); a capture gets
        them finished (a sum per piece, only while capturing)."""
        taps = self.taps
        send = device.send
        send_many = getattr(device, "write_many", None)
        limit = cut.mtu + 14 if cut is not None else 0
        partial = cut is not None and getattr(device, "csum_only", False)
        if partial:
            write_partial = device.write_partial

            def partial_send(frame: bytes) -> None:
                pieces = cut.segment_partial(frame) if len(frame) > limit else None
                if pieces is None:
                    gso_send(frame)
                    return
                if taps:
                    now = time.monotonic_ns()
                    for headers, payload in pieces:
                        finished = finish_checksum(headers + payload, 34, 16)
                        for tap in taps:
                            tap(now, "tx", finished)
                write_partial(pieces)

        def gso_send(frame: bytes) -> None:
            pieces = cut.segment(frame) if cut is not None and len(frame) > limit else None
            if taps:
                now = time.monotonic_ns()
                for piece in pieces or (frame,):
                    for tap in taps:
                        tap(now, "tx", piece)
            if pieces is None:
                send(frame)
            elif send_many is not None:
                send_many(pieces)
            else:
                for piece in pieces:
                    send(piece)
        return partial_send if partial else gso_send

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.driver.start()
            for ifindex, device in enumerate(self.devices):
                self.loop.add_reader(device.fileno(), self._on_readable, ifindex)
            self.kick()

    def stop(self) -> None:
        if self._started:
            self._started = False
            for device in self.devices:
                self.loop.remove_reader(device.fileno())
            self.driver.stop()

    def _on_readable(self, ifindex: int = 0) -> None:
        self._woken = False
        host = self.host
        receive = host.receive
        taps = self.taps
        now = time.monotonic_ns()
        device = self.devices[ifindex]
        # With offloads a device hands out (frame, checksum_ok) pairs: a frame may be a TCP
        # super-segment (the kernel's GRO) whose checksum the kernel vouches for.
        offload = self.offloaded[ifindex]
        read = device.read_frames_offload if offload else device.read_frames
        frames = self._read(read, 1)
        if not frames:
            return
        first, checksum_ok = frames[0] if offload else (frames[0], False)
        # (A device may hand out more than it was asked for -- see PolledDevice: then the
        # frames are a batch.)
        if self.first_alone and len(frames) == 1 and answer_first(first, self.layer3[ifindex]):
            # Answered before the read that finds the queue empty (and before the batch's
            # bookkeeping): those are then off the waiting peer's clock.
            for tap in taps:
                tap(now, "rx", first)
            receive(first, now, ifindex, checksum_ok)
            self.driver.service()
            frames = self._read(read, BATCH - 1)
            if not frames:
                self._after_tasks()
                return
            now = time.monotonic_ns()
        else:
            more = self._read(read, BATCH - 1)
            if more is None:
                return
            frames += more
        # (The taps see the frames in the order they were read; syns_first may then change
        # the order in which the host takes them.)
        small = self.first_alone and len(frames) <= SMALL_BATCH
        gro = self.gro[ifindex]
        vouched = False     # the device vouched for the TCP checksum of every frame
        if offload:
            if taps:
                for frame, _ in frames:
                    for tap in taps:
                        tap(now, "rx", frame)
            if small:
                frames = syns_first(frames, self.layer3[ifindex], True)
            if gro is None or not all(ok for _, ok in frames):
                # The kernel's own GRO (full offloads), or a frame the kernel did not vouch
                # for in a checksum-only batch: up as they came, each with its word.
                for frame, checksum_ok in frames:
                    receive(frame, now, ifindex, checksum_ok)
                self.driver.service()
                self._after_tasks()
                return
            # Checksum offload only, every frame vouched for (as the kernel does for all it
            # made itself): our GRO and ACK filtering, without summing what it vouched for.
            frames = [frame for frame, _ in frames]
            vouched = True
        else:
            if taps:
                for frame in frames:
                    for tap in taps:
                        tap(now, "rx", frame)
            if small:
                frames = syns_first(frames, self.layer3[ifindex])
        if gro is not None and len(frames) > 1:
            frames, left_out = thin_acks(frames, vouched)
            self.acks_thinned += left_out
            for frame, checksum_ok, _ in gro.coalesce(frames, vouched):
                receive(frame, now, ifindex, checksum_ok)
        else:
            for frame in frames:
                receive(frame, now, ifindex, vouched)
        self.driver.service()
        self._after_tasks()

    def _read(self, read, n: int):
        """``read(n)``: up to n frames from a device, or None when the device is gone (the
        wire closed our connection, the TAP was deleted) -- then the host stops reading
        instead of being woken for the same error forever.  Only reads are guarded: a
        failed write is reported where it happens (the driver's service)."""
        try:
            return read(n)
        except OSError as e:
            self.device_error = e
            self.stop()
            return None

    def _after_tasks(self) -> None:
        """Queue one more service behind the tasks the batch just woke (their wake-ups were
        queued by the service, so this handle runs after them in the next loop iteration):
        what they write -- an echo's reply, a response -- then leaves without waiting for
        a further turn of the loop that their own kick() would take.  Only when a task was
        woken: protocols (create_server) and a bulk transfer's ACKs need no second turn."""
        if self._woken:
            self.kick()

    def wake(self) -> None:
        self._woken = True

    def kick(self) -> None:
        self.driver.kick()


def attach_to_wire(spec: str, address: str, *, name: str = "wirestack", mac: bytes | None = None,
                   gateway: str | None = None, rng=None,
                   loop: asyncio.AbstractEventLoop | None = None) -> RealtimeHost:
    """A new host with ``address`` ("198.18.0.5/24") plugged into a running ``wirestack
    wire`` through its stream port ``spec`` (``unix:PATH`` or ``tcp:127.0.0.1:PORT``),
    started on ``loop`` (default: the running loop). Close with ``rt.stop();
    rt.device.close()``."""
    import random
    from ..iface import Host, HostConfig
    from ..phy.stream import StreamDevice
    rng = rng or random.Random()
    if mac is None:
        mac = bytes([0x02, 0x57, 0x53] + [rng.randrange(256) for _ in range(3)])
    host = Host(name, rng=rng, config=HostConfig(log_events=False))
    host.add_interface(mac, address)
    if gateway:
        host.routes.add_default(gateway)
    rt = RealtimeHost(host, StreamDevice(spec), loop or asyncio.get_running_loop())
    rt.start()
    return rt
