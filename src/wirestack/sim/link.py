"""A full-duplex point-to-point link: one :class:`LinkDirection` per direction, each with
its rate, delay, queue, MTU and impairments (loss, Gilbert-Elliott, duplication, reordering,
corruption, truncation), scripted faults, and down/up."""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable

from wirestack.units import SEC

from .decisions import DecisionLog
from .impair import Fault, LinkParams, flip_bits
from .medium import default_decode, derive_rng


class LinkDirection:
    """One direction of a :class:`Link`: a transmit queue, a serializer at ``rate_bps``, then
    propagation (+ jitter), random impairments and scripted faults.

    Queueing is computed, not simulated: the direction remembers when its transmitter is
    busy until, so a frame costs a single scheduler event (its arrival)."""

    def __init__(self, link: "Link", src, dst, params: LinkParams, rng: random.Random, label: str):
        self.link = link
        self.sched = link.sched
        self.log = link.log
        self.mname = link.name
        self.src = src
        self.dst = dst
        self.src_name = getattr(src, "name", "?")
        self.dst_name = getattr(dst, "name", "?")
        self.params = params
        self.rng = rng
        self.label = label
        self.faults: list[Fault] = []
        self.busy_until = 0          # the serializer is busy until this time
        self.waiting: deque[int] = deque()  # start times of frames waiting for the serializer
        self.last_arrival = 0        # for keep_order
        self.bad = False             # Gilbert-Elliott state
        self._arrive_cb = self._arrive  # bound once, not per frame
        self._refresh()

    def _refresh(self) -> None:
        # Precompute what the per-frame path needs (attribute lookups on the dataclass and
        # the "anything to do?" test would otherwise be paid on every frame).
        p = self.params
        self.rate = p.rate_bps
        self.delay = p.delay
        self.mtu = p.mtu
        self.queue_limit = p.queue_limit if p.queue_limit is not None else 1 << 62
        self.plain = p.is_plain() and not self.faults

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)
        self._refresh()

    def transmit(self, data: bytes, fid: int | None = None) -> int:
        """Put ``data`` (a frame with FCS) on this direction now. ``fid`` is given when a
        switch forwards a frame that already has an id."""
        now = self.sched.now
        log = self.log
        if fid is None:
            fid = log.next_id()
            if log.full:
                log.record(now, fid, self.mname, "sent", src=self.src_name, size=len(data))
        link = self.link
        if link.taps:
            frame = data[:-4]
            for fn in link.taps:
                fn(now, frame)
        if link.frame_taps:
            for fn in link.frame_taps:
                fn(now, fid, self.src_name, data)
        if link.down:
            if log.enabled:
                log.record(now, fid, self.mname, "link_down", src=self.src_name)
            return fid
        n = len(data)
        if self.mtu is not None and n - 18 > self.mtu:
            if log.enabled:
                log.record(now, fid, self.mname, "mtu_exceeded", src=self.src_name,
                           size=n - 18, mtu=self.mtu)
            return fid
        rate = self.rate
        if rate:
            ser = -(-n * 8 * SEC // rate)
            start = self.busy_until
            if start > now:
                q = self.waiting
                while q and q[0] <= now:
                    q.popleft()
                if len(q) >= self.queue_limit:
                    if log.enabled:
                        log.record(now, fid, self.mname, "queue_overflow", src=self.src_name,
                                   depth=len(q), limit=self.queue_limit)
                    return fid
                q.append(start)
                if log.full:
                    log.record(now, fid, self.mname, "queued", depth=len(q))
            else:
                start = now
            finish = start + ser
            self.busy_until = finish
        else:
            ser = 0
            finish = now
        if self.plain:
            arrival = finish + self.delay
            if log.full:
                log.record(now, fid, self.mname, "delayed", total=arrival - now,
                           serialization=ser, propagation=self.delay, jitter=0)
            self.sched.call_at(arrival, self._arrive_cb, data, fid)
            return fid
        self._impaired(data, fid, now, finish, ser)
        return fid

    def _impaired(self, data: bytes, fid: int, now: int, finish: int, ser: int) -> None:
        p = self.params
        rng = self.rng
        log = self.log
        rec = log.enabled
        m = self.mname
        src = self.src_name
        extra = 0            # hold-back that lets later frames overtake (reorder / delay fault)
        copies = 0
        if self.faults:
            decoded: list = []

            def frame_obj():
                if not decoded:
                    try:
                        decoded.append(self.link.decode(data[:-4]))
                    except ValueError:  # MalformedPacket is a ValueError: no match
                        decoded.append(None)
                return decoded[0]

            for f in self.faults:
                if not f.decide(now, frame_obj, fid):
                    continue
                act = f.action
                if act == "drop":
                    if rec:
                        log.record(now, fid, m, "fault", src=src, fault=f.name, action=act)
                    return
                if act == "corrupt":
                    data, bits = flip_bits(data, rng, f.bits)
                    if rec:
                        log.record(now, fid, m, "fault", src=src, fault=f.name, action=act, bits=bits)
                elif act == "truncate":
                    old = len(data)
                    if old > 1:
                        data = data[:rng.randrange(1, old)]
                    if rec:
                        log.record(now, fid, m, "fault", src=src, fault=f.name, action=act,
                                   old=old, new=len(data))
                elif act == "duplicate":
                    copies += 1
                    if rec:
                        log.record(now, fid, m, "fault", src=src, fault=f.name, action=act)
                else:  # delay
                    extra += f.delay
                    if rec:
                        log.record(now, fid, m, "fault", src=src, fault=f.name, action=act, extra=f.delay)
        # Random impairments, always drawn in this order so a seed replays exactly.
        g = p.gilbert
        if g is not None:
            # Move the two-state chain first, then lose the frame with the state's probability.
            if self.bad:
                if rng.random() < g[1]:
                    self.bad = False
            elif rng.random() < g[0]:
                self.bad = True
            pl = g[2] if self.bad else g[3]
            if pl and rng.random() < pl:
                if rec:
                    log.record(now, fid, m, "dropped_loss", src=src,
                               model="gilbert-bad" if self.bad else "gilbert-good", p=pl)
                return
        if p.loss and rng.random() < p.loss:
            if rec:
                log.record(now, fid, m, "dropped_loss", src=src, model="independent", p=p.loss)
            return
        if p.corrupt and rng.random() < p.corrupt:
            data, bits = flip_bits(data, rng, p.corrupt_bits)
            if rec:
                log.record(now, fid, m, "corrupted", src=src, bits=bits)
        if p.truncate and rng.random() < p.truncate and len(data) > 1:
            old = len(data)
            data = data[:rng.randrange(1, old)]
            if rec:
                log.record(now, fid, m, "truncated", src=src, old=old, new=len(data))
        if p.duplicate and rng.random() < p.duplicate:
            copies += 1
        jitter = 0
        prop = self.delay
        if p.jitter:
            if p.jitter_dist == "uniform":
                jitter = rng.randint(-p.jitter, p.jitter)
            else:
                jitter = round(rng.gauss(0.0, p.jitter))
            if prop + jitter < 0:
                jitter = -prop  # a frame cannot arrive before it was sent
            prop += jitter
        if p.reorder and rng.random() < p.reorder:
            extra += p.reorder_delay
            if rec:
                log.record(now, fid, m, "reordered", src=src, extra=p.reorder_delay)
        arrival = finish + prop
        if p.keep_order:
            # A cable is FIFO: jitter stretches gaps but never swaps frames. Held-back frames
            # (reorder / delay fault) are exempt: being overtaken is their point.
            if arrival < self.last_arrival:
                arrival = self.last_arrival
            self.last_arrival = arrival
        arrival += extra
        if log.full:
            log.record(now, fid, m, "delayed", total=arrival - now, serialization=ser,
                       propagation=self.delay, jitter=jitter, hold=extra)
        sched = self.sched
        sched.call_at(arrival, self._arrive_cb, data, fid)
        for _ in range(copies):
            cid = log.next_id()
            if rec:
                log.record(now, cid, m, "duplicated", src=src, parent=fid)
            # The copy follows the original (FIFO among equal times).
            sched.call_at(arrival, self._arrive_cb, data, cid)

    def _arrive(self, data: bytes, fid: int) -> None:
        log = self.log
        if self.link.down:
            # The cable was cut while the frame was in flight.
            if log.enabled:
                log.record(self.sched.now, fid, self.mname, "link_down", src=self.src_name, in_flight=True)
            return
        if log.full:
            log.record(self.sched.now, fid, self.mname, "delivered", to=self.dst_name)
        self.dst.deliver(data, fid, self.link)


class Link:
    """A full-duplex point-to-point link between two endpoints (NICs or switch ports).

    ``a_to_b`` (alias ``params``) and ``b_to_a`` are :class:`LinkParams`; ``b_to_a=None`` uses
    the same parameters in both directions (each direction still has its own queue, state
    and random stream). Randomness: ``seed`` (preferred: decisions then depend only on seed
    and link name) or ``rng`` (two sub-seeds are drawn from it).

    Down/up: while the link is down, frames sent are dropped (``link_down``); frames in
    flight when it goes down are dropped when they would have arrived if it is still down.
    """

    kind = "link"

    def __init__(self, sched, nic_a, nic_b, a_to_b: LinkParams | None = None,
                 b_to_a: LinkParams | None = None, *, params: LinkParams | None = None,
                 rng: random.Random | None = None, seed: Any = None,
                 log: DecisionLog | None = None, name: str | None = None,
                 decode: Callable[[bytes], Any] | None = None):
        if a_to_b is None:
            a_to_b = params if params is not None else LinkParams()
        elif params is not None:
            raise TypeError("give a_to_b or params, not both")
        if b_to_a is None:
            b_to_a = a_to_b
        self.sched = sched
        self.name = name or f"{getattr(nic_a, 'name', 'a')}<->{getattr(nic_b, 'name', 'b')}"
        self.log = log if log is not None else DecisionLog()
        self.log.register_medium(self.name, self.kind)
        self.decode = decode or default_decode
        self.down = False
        self.taps: list[Callable[[int, bytes], object]] = []
        self.frame_taps: list[Callable[[int, int, str, bytes], object]] = []
        self.nic_a = nic_a
        self.nic_b = nic_b
        self.ab = LinkDirection(self, nic_a, nic_b, a_to_b, derive_rng(seed, rng, self.name + ":a>b"), "a>b")
        self.ba = LinkDirection(self, nic_b, nic_a, b_to_a, derive_rng(seed, rng, self.name + ":b>a"), "b>a")
        nic_a.attach(self, self.ab.transmit)
        nic_b.attach(self, self.ba.transmit)

    def __repr__(self) -> str:
        return f"<Link {self.name}{' down' if self.down else ''}>"

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        """``fn(now, frame_without_fcs)`` for every frame put on the link (either direction),
        at the moment it is handed to the link, as sent (before any impairment)."""
        self.taps.append(fn)

    def add_frame_tap(self, fn: Callable[[int, int, str, bytes], object]) -> None:
        """``fn(now, frame_id, sender_name, frame_with_fcs)`` for every frame put on the link,
        as sent, with its decision-log id (a capture uses the id to comment on its fate)."""
        self.frame_taps.append(fn)

    def add_fault(self, fault: Fault, direction: str = "both") -> Fault:
        """Attach a scripted fault to 'a>b', 'b>a' or 'both' directions."""
        if direction not in ("both", "a>b", "b>a"):
            raise ValueError("direction must be 'both', 'a>b' or 'b>a'")
        if direction in ("both", "a>b"):
            self.ab.add_fault(fault)
        if direction in ("both", "b>a"):
            self.ba.add_fault(fault)
        return fault

    def set_down(self) -> None:
        self.down = True

    def set_up(self) -> None:
        self.down = False

    def schedule_down(self, t: int):
        return self.sched.call_at(t, self.set_down)

    def schedule_up(self, t: int):
        return self.sched.call_at(t, self.set_up)
