"""The real-time runtime: the same sans-I/O host, driven by a TAP device and the monotonic clock.

One asyncio loop does everything, with no thread hops: the TAP fd is a reader on the loop;
when it is readable we drain a batch of frames into the host, then ask the host for its
output once (so a burst of incoming segments produces one round of ACKs and data), and
arm a loop timer for the host's next deadline.

A host with several interfaces (a router) gets one device per interface, ``devices[i]``
carrying interface ``i``: each is a reader on the same loop.
"""

from __future__ import annotations

import asyncio
import time

from .base import RuntimeHost

BATCH = 128   # frames read per wake-up before the host is asked for output


class RealtimeHost(RuntimeHost):
    def __init__(self, host, device, loop: asyncio.AbstractEventLoop | None = None, taps=(),
                 more_devices=()):
        self.host = host
        self.device = device
        self.devices = [device, *more_devices]   # devices[i] carries host interface i
        self.loop = loop or asyncio.get_event_loop()
        self.taps = list(taps)       # fn(now_ns, direction 'rx'|'tx', frame)
        self._service_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._started = False

    def now_ns(self) -> int:
        return time.monotonic_ns()   # asyncio's loop.time() is time.monotonic(): one clock

    def start(self) -> None:
        if not self._started:
            self._started = True
            for ifindex, device in enumerate(self.devices):
                self.loop.add_reader(device.fileno(), self._on_readable, ifindex)
            self.kick()

    def stop(self) -> None:
        if self._started:
            self._started = False
            for device in self.devices:
                self.loop.remove_reader(device.fileno())
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _on_readable(self, ifindex: int = 0) -> None:
        host = self.host
        receive = host.receive
        taps = self.taps
        now = time.monotonic_ns()
        frames = self.devices[ifindex].read_frames(BATCH)
        for frame in frames:
            if taps:
                for tap in taps:
                    tap(now, "rx", frame)
            receive(frame, now, ifindex)
        self._service()

    def kick(self) -> None:
        if not self._service_scheduled:
            self._service_scheduled = True
            self.loop.call_soon(self._service)

    def _service(self) -> None:
        self._service_scheduled = False
        if not self._started:
            return  # a kick() queued before stop(): the device (and pcap) may be closed
        now = time.monotonic_ns()
        devices = self.devices
        taps = self.taps
        for ifindex, frame in self.host.transmit(now):
            if taps:
                for tap in taps:
                    tap(now, "tx", frame)
            devices[ifindex].write(frame)
        t = self.host.poll_at()
        if t is None or t == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = t
        self._timer = self.loop.call_at(max(t, now + 1000) / 1e9, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._service()
