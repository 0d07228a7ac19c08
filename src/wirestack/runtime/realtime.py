"""The real-time runtime: the same sans-I/O host, driven by a TAP device and the monotonic clock.

One asyncio loop does everything, with no thread hops: the TAP fd is a reader on the loop;
when it is readable we drain a batch of frames into the host, then ask the host for its
output once (so a burst of incoming segments produces one round of ACKs and data), and
arm a loop timer for the host's next deadline.
"""

from __future__ import annotations

import asyncio
import time

from .base import RuntimeHost

BATCH = 128   # frames read per wake-up before the host is asked for output


class RealtimeHost(RuntimeHost):
    def __init__(self, host, device, loop: asyncio.AbstractEventLoop | None = None, taps=()):
        self.host = host
        self.device = device
        self.loop = loop or asyncio.get_event_loop()
        self.taps = list(taps)       # fn(now_ns, direction 'rx'|'tx', frame)
        self._service_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._started = False
        self.device_error: OSError | None = None   # why the device stopped (wire closed ...)

    def now_ns(self) -> int:
        return time.monotonic_ns()   # asyncio's loop.time() is time.monotonic(): one clock

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.loop.add_reader(self.device.fileno(), self._on_readable)
            self.kick()

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.loop.remove_reader(self.device.fileno())
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _on_readable(self) -> None:
        host = self.host
        receive = host.receive
        taps = self.taps
        now = time.monotonic_ns()
        try:
            frames = self.device.read_frames(BATCH)
        except OSError as e:
            # The device is gone (the wire closed our connection, the TAP was deleted):
            # stop reading instead of being woken for the same error forever.
            self.device_error = e
            self.stop()
            return
        for frame in frames:
            if taps:
                for tap in taps:
                    tap(now, "rx", frame)
            receive(frame, now, 0)
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
        write = self.device.write
        taps = self.taps
        for _ifindex, frame in self.host.transmit(now):
            if taps:
                for tap in taps:
                    tap(now, "tx", frame)
            write(frame)
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
