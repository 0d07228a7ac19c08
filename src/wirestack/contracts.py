"""The contracts between layers, named: what the host asks of a transport, and what a
runtime asks of a device.

They are :class:`typing.Protocol` s, so nothing has to inherit from them: a class that has
the methods fits, and mypy checks it where an object is held under the protocol's name.
This module imports nothing of wirestack: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

DUE_NOW = 0
"""What ``poll_at()`` returns for work that is due at once (a datagram queued by a socket
call): no later than the clock the host was last driven with."""


@runtime_checkable
class Transport(Protocol):
    """A transport the host owns (TCP, UDP, ICMP), one verb per idea:

    * ``input(...)`` -- a datagram for this protocol arrived (the arguments are what the
      protocol needs from IP: addresses, body, ``now``; TCP also takes ``checksum_ok``, UDP
      the whole datagram for a port unreachable, ICMP the parsed IP header);
    * ``poll(now)`` -- hand to IP (``ip_output``) everything due at ``now``: queued
      datagrams, segments, retransmissions, timers;
    * ``poll_at()`` -- when ``poll`` must next be called (ns), ``DUE_NOW`` when it has
      something to send at once, ``None`` when it waits for nothing.

    Socket calls never send by themselves: they queue, and the host's next ``poll`` sends.
    """

    input: Callable[..., None]

    def poll(self, now: int) -> None: ...

    def poll_at(self) -> int | None: ...


@runtime_checkable
class Device(Protocol):
    """Frames out: what the driver loop hands a frame to (a simulated NIC, a TAP device,
    a wire's stream port).  ``send(frame)`` takes an Ethernet frame without FCS (a bare IP
    datagram on a layer-3 device) and returns False when the frame was dropped.  Frames in
    arrive by a callback (the simulated NIC's ``on_receive``) or by polling a
    :class:`PolledDevice`."""

    def send(self, frame: bytes) -> bool: ...


@runtime_checkable
class MediumEndpoint(Protocol):
    """What a simulated medium (link, hub, switch) asks of what it is attached to: a NIC,
    or a switch's port.  ``attach(medium, tx)``: you are on ``medium`` now, send frames
    (with FCS) by calling ``tx(frame)``; ``deliver(data, frame_id, medium)``: a frame has
    fully arrived (with its FCS; the endpoint checks it and counts what it drops)."""

    def attach(self, medium: Any, tx: Callable[[bytes], object]) -> None: ...

    def deliver(self, data: bytes, fid: int, medium: Any) -> None: ...


@runtime_checkable
class PolledDevice(Device, Protocol):
    """A real device: frames in by reading a batch when the file descriptor is readable
    (``loop.add_reader(dev.fileno(), ...)``).  ``read_frames(n)`` returns what is queued,
    n frames or fewer from a TAP; a stream device returns every frame one read of its
    socket decoded, which may be more than n (kept back, they would wait for a wake-up
    that no longer comes), so a caller treats any list as a batch.  ``offload`` says
    whether frames carry the kernel's segmentation and checksum offloads (then
    ``read_frames_offload`` yields ``(frame, checksum_ok)``; see :mod:`wirestack.phy.tap`)."""

    offload: bool

    def fileno(self) -> int: ...

    def read_frames(self, max_frames: int = 64) -> list[bytes]: ...

    def close(self) -> None: ...
