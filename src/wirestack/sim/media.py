"""Simulated media: a full-duplex point-to-point :class:`Link`, a shared :class:`Hub` (with
or without CSMA/CD) and a learning store-and-forward :class:`Switch`.

Media carry frames *with* their FCS (the NIC appends and checks it). Every frame put on a
medium gets an id from the :class:`~wirestack.sim.decisions.DecisionLog`, and every decision
about it is recorded there (at the log's level).

A medium talks to its endpoints through two methods, which :class:`~wirestack.sim.nic.Nic`
implements: ``endpoint._attach(medium, tx)`` (tx = the callable the endpoint sends frames
with) and ``endpoint._deliver(data, frame_id, medium)`` (a frame has fully arrived). The
medium exposes ``.name`` and ``.log`` to its endpoints.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from typing import Any, Callable

from wirestack.units import SEC

from .decisions import DecisionLog
from .impair import Fault, LinkParams, flip_bits
from ..wire.checksum import FCS_RESIDUE

_NEVER = -(1 << 62)   # "long ago" for last-activity times


def _bits_ns(bits: int, rate_bps: int) -> int:
    """Time to clock ``bits`` out at ``rate_bps``, in whole ns (rounded up, so a frame never
    takes zero time on a finite-rate medium)."""
    return -(-bits * SEC // rate_bps)


def _derive_rng(seed, rng: random.Random | None, label: str) -> random.Random:
    """The random stream for one part of a medium. With an explicit seed it depends only on
    (seed, label): adding a link elsewhere in the network cannot shift this one's decisions.
    String seeding is hashed with SHA-512 by ``random``, so it is stable across processes."""
    if seed is not None:
        return random.Random(f"wirestack:{seed}:{label}")
    if rng is not None:
        return random.Random(f"wirestack:{rng.getrandbits(64)}:{label}")
    return random.Random(f"wirestack:0:{label}")


def _default_decode(frame: bytes):
    # Imported lazily: only links with scripted faults need the codecs. Checksums are not
    # verified so a fault can match (say) a TCP segment that an earlier fault corrupted.
    from wirestack.wire import parse_frame
    return parse_frame(frame, verify_checksums=False)


# ------------------------------------------------------------------------------------------
# Point-to-point link
# ------------------------------------------------------------------------------------------

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
        if link._taps:
            frame = data[:-4]
            for fn in link._taps:
                fn(now, frame)
        if link._frame_taps:
            for fn in link._frame_taps:
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
        self.dst._deliver(data, fid, self.link)


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
        self.decode = decode or _default_decode
        self.down = False
        self._taps: list[Callable[[int, bytes], object]] = []
        self._frame_taps: list[Callable[[int, int, str, bytes], object]] = []
        self.nic_a = nic_a
        self.nic_b = nic_b
        self.ab = LinkDirection(self, nic_a, nic_b, a_to_b, _derive_rng(seed, rng, self.name + ":a>b"), "a>b")
        self.ba = LinkDirection(self, nic_b, nic_a, b_to_a, _derive_rng(seed, rng, self.name + ":b>a"), "b>a")
        nic_a._attach(self, self.ab.transmit)
        nic_b._attach(self, self.ba.transmit)

    def __repr__(self) -> str:
        return f"<Link {self.name}{' down' if self.down else ''}>"

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        """``fn(now, frame_without_fcs)`` for every frame put on the link (either direction),
        at the moment it is handed to the link, as sent (before any impairment)."""
        self._taps.append(fn)

    def add_frame_tap(self, fn: Callable[[int, int, str, bytes], object]) -> None:
        """``fn(now, frame_id, sender_name, frame_with_fcs)`` for every frame put on the link,
        as sent, with its decision-log id (a capture uses the id to comment on its fate)."""
        self._frame_taps.append(fn)

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


# ------------------------------------------------------------------------------------------
# Hub (shared medium)
# ------------------------------------------------------------------------------------------

class _Station:
    __slots__ = ("nic", "name", "index", "a", "queue", "tx", "attempts", "last_end", "pending", "rng")

    def __init__(self, nic, index: int, a: int, rng: random.Random):
        self.nic = nic
        self.name = getattr(nic, "name", f"station{index}")
        self.index = index
        self.a = a                  # one-way propagation station <-> hub, ns
        self.queue: deque = deque()  # (data, fid); the head is the frame being (re)tried
        self.tx = None              # the _Tx in progress, if any
        self.attempts = 0           # collisions suffered by the head frame
        self.last_end = _NEVER
        self.pending = None         # handle of a scheduled _attempt
        self.rng = rng


class _Tx:
    __slots__ = ("st", "data", "fid", "start", "end", "garbled", "colliders", "detect", "handle", "reported")

    def __init__(self, st: _Station, data: bytes, fid: int, start: int, end: int):
        self.st = st
        self.data = data
        self.fid = fid
        self.start = start
        self.end = end
        self.garbled = False
        self.colliders: list[int] = []
        self.detect: int | None = None
        self.handle = None
        self.reported = False


class Hub:
    """A repeater hub: a shared half-duplex medium; every frame reaches every other station.

    Geometry is a star: station i is ``distance_m`` of cable from the hub, signals travel at
    2e8 m/s, so a signal from i reaches j after (d_i + d_j) / 2e8 s. The wire time of a frame
    is (preamble+SFD 8 bytes + frame + FCS) * 8 bits / rate.

    Two transmissions *collide* when their signals overlap at the hub; both are garbled and
    no station receives either (recorded as ``collision``).

    ``csma_cd=False``: stations transmit as soon as they have a frame (respecting only their
    own inter-frame gap), never listen, and a collided frame is simply lost (pure ALOHA-like).

    ``csma_cd=True`` (IEEE 802.3 §4.2, 1-persistent):

    * carrier sense: a station defers while a signal is present *at its own position*
      (a signal that has not reached it yet cannot be sensed: that window is what makes
      collisions possible), then waits the 96-bit-time inter-frame gap;
    * collision detection: a station that hears another signal while transmitting stops,
      sends a 32-bit jam, and backs off r slots, r uniform in [0, 2^min(n,10)) after its
      n-th collision; after 16 collisions it gives up (``excessive_collisions``,
      ``eth.tx_aborted_collisions`` in the sender's counters).

    Simplifications, stated honestly:

    * carrier sense is re-checked only at the moment a station wants to start; the two-part
      deferral of §4.2.3.2.1 (ignoring carrier in the last third of the gap) is not modelled;
    * collision bookkeeping assumes the network diameter is within the slot time
      (round-trip propagation < 512 bit times, as 802.3 requires); with longer cables a
      collision can be noticed after the sender considered the frame done, and the frame is
      then lost without retry;
    * a station that receives while transmitting is not modelled separately: that situation
      is a collision by construction; the jam is not delivered to anyone as a frame;
    * the hub itself adds no delay and has no queue; each station has a transmit queue of
      ``queue_limit`` frames.
    """

    kind = "hub"

    def __init__(self, sched, csma_cd: bool = False, rate_bps: int = 10_000_000,
                 slot_time: int | None = None, log: DecisionLog | None = None, seed: Any = 0,
                 rng: random.Random | None = None, name: str = "hub", queue_limit: int = 1000,
                 attempt_limit: int = 16, backoff_limit: int = 10):
        if rate_bps <= 0:
            raise ValueError("rate_bps must be positive")
        self.sched = sched
        self.csma_cd = csma_cd
        self.rate_bps = rate_bps
        self.slot_time = slot_time if slot_time is not None else _bits_ns(512, rate_bps)
        self.jam_time = _bits_ns(32, rate_bps)
        self.ifg = _bits_ns(96, rate_bps)
        self.name = name
        self.log = log if log is not None else DecisionLog()
        self.log.register_medium(name, self.kind)
        self.queue_limit = queue_limit
        self.attempt_limit = attempt_limit
        self.backoff_limit = backoff_limit
        self._seed = seed
        self._rng = rng
        self.stations: list[_Station] = []
        self._txs: list[_Tx] = []   # transmissions whose signal may still be on the medium
        self._max_a = 0
        self._taps: list[Callable[[int, bytes], object]] = []
        self._frame_taps: list[Callable[[int, int, str, bytes], object]] = []

    def __repr__(self) -> str:
        return f"<Hub {self.name} {len(self.stations)} stations{' CSMA/CD' if self.csma_cd else ''}>"

    def attach(self, nic, distance_m: float = 10.0, label: str | None = None) -> None:
        """``label`` names the station's random stream (backoff draws); by default it is
        the attach index and NIC name. A caller whose stations attach in no fixed order
        (the real-time wire) passes a stable label so the draws stay per-station."""
        if distance_m < 0:
            raise ValueError("distance_m must be >= 0")
        index = len(self.stations)
        a = round(distance_m * SEC / 200_000_000)  # 2e8 m/s: 5 ns per metre
        if label is None:
            label = f"{index}:{getattr(nic, 'name', '')}"
        st = _Station(nic, index, a, _derive_rng(self._seed, self._rng, f"{self.name}:{label}"))
        self.stations.append(st)
        self._max_a = max(self._max_a, a)
        nic._attach(self, lambda data, st=st: self._enqueue(st, data))

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        """``fn(now, frame_without_fcs)`` for every frame that crossed the hub intact, when
        its last bit has passed the hub (collided frames are not captured)."""
        self._taps.append(fn)

    def add_frame_tap(self, fn: Callable[[int, int, str, bytes], object]) -> None:
        """``fn(now, frame_id, station_name, frame_with_fcs)`` for every frame a station hands
        to the hub, when it is handed over (its fate, collisions included, is in the log)."""
        self._frame_taps.append(fn)

    # -- station side ----------------------------------------------------------------------

    def _enqueue(self, st: _Station, data: bytes) -> int:
        now = self.sched.now
        log = self.log
        fid = log.next_id()
        if log.full:
            log.record(now, fid, self.name, "sent", src=st.name, size=len(data))
        if self._frame_taps:
            for fn in self._frame_taps:
                fn(now, fid, st.name, data)
        if len(st.queue) >= self.queue_limit:
            if log.enabled:
                log.record(now, fid, self.name, "queue_overflow", src=st.name,
                           depth=len(st.queue), limit=self.queue_limit)
            return fid
        st.queue.append((data, fid))
        if st.tx is None and st.pending is None:
            self._attempt(st)
        return fid

    def _attempt(self, st: _Station) -> None:
        st.pending = None
        if st.tx is not None or not st.queue:
            return
        now = self.sched.now
        self._prune(now)
        t_free = st.last_end + self.ifg
        if self.csma_cd:
            ifg = self.ifg
            for o in self._txs:
                if o.st is st:
                    continue
                p = o.st.a + st.a
                if o.start + p < now:   # its signal has reached this station: carrier
                    free = o.end + p + ifg
                    if free > t_free:
                        t_free = free
        if t_free > now:
            st.pending = self.sched.call_at(t_free, self._attempt, st)
            if self.log.full:
                self.log.record(now, st.queue[0][1], self.name, "deferred", src=st.name, until=t_free)
            return
        self._start(st, now)

    def _start(self, st: _Station, now: int) -> None:
        data, fid = st.queue[0]
        tx = _Tx(st, data, fid, now, now + _bits_ns((len(data) + 8) * 8, self.rate_bps))
        a_s = st.a
        csma = self.csma_cd
        jam = self.jam_time
        for o in self._txs:
            if o.st is st:
                continue
            a_o = o.st.a
            # Collision = the two signals overlap at the hub, the only point both pass.
            if max(now + a_s, o.start + a_o) >= min(tx.end + a_s, o.end + a_o):
                continue
            tx.garbled = o.garbled = True
            tx.colliders.append(o.fid)
            o.colliders.append(fid)
            if csma:
                p = a_s + a_o
                heard = o.start + p           # o's signal reaches us
                if heard < tx.end:
                    d = heard if heard > now else now
                    if tx.detect is None or d < tx.detect:
                        tx.detect = d
                heard = now + p               # our signal reaches o
                if heard < o.end:
                    d = heard if heard > o.start else o.start
                    if o.detect is None or d < o.detect:
                        o.detect = d
                    if d + jam < o.end:       # o stops after its jam
                        o.end = d + jam
                        o.handle.cancel()
                        o.handle = self.sched.call_at(o.end, self._end, o)
        if tx.detect is not None and tx.detect + jam < tx.end:
            tx.end = tx.detect + jam
        self._txs.append(tx)
        st.tx = tx
        tx.handle = self.sched.call_at(tx.end, self._end, tx)

    def _end(self, tx: _Tx) -> None:
        """The sender stops transmitting (end of frame, or end of jam)."""
        st = tx.st
        now = self.sched.now
        st.tx = None
        st.last_end = now
        sched = self.sched
        if tx.garbled:
            self._report(tx, now)
            if self.csma_cd:
                st.attempts += 1
                log = self.log
                if st.attempts >= self.attempt_limit:
                    if log.enabled:
                        log.record(now, tx.fid, self.name, "excessive_collisions", src=st.name,
                                   attempts=st.attempts)
                    counters = getattr(st.nic, "counters", None)
                    if counters is not None:
                        counters.incr("eth.tx_aborted_collisions")
                    st.queue.popleft()
                    st.attempts = 0
                else:
                    # Truncated binary exponential backoff (IEEE 802.3 §4.2.3.2.5).
                    k = min(st.attempts, self.backoff_limit)
                    r = st.rng.randrange(1 << k)
                    if log.enabled:
                        log.record(now, tx.fid, self.name, "backoff", src=st.name,
                                   attempt=st.attempts, slots=r, wait=r * self.slot_time)
                    st.pending = sched.call_at(now + r * self.slot_time, self._attempt, st)
                    return
            else:
                st.queue.popleft()    # no collision detection: the sender never knows
                st.attempts = 0
        else:
            st.queue.popleft()
            st.attempts = 0
        sched.call_at(now + st.a, self._settle, tx)
        if st.queue:
            st.pending = sched.call_at(now + self.ifg, self._attempt, st)

    def _report(self, tx: _Tx, now: int) -> None:
        if tx.reported:
            return
        tx.reported = True
        counters = getattr(tx.st.nic, "counters", None)
        if counters is not None:
            counters.incr("eth.tx_collisions")
        if self.log.enabled:
            self.log.record(now, tx.fid, self.name, "collision", src=tx.st.name,
                            attempt=tx.st.attempts + 1, **{"with": sorted(set(tx.colliders))})

    def _settle(self, tx: _Tx) -> None:
        """The frame's last bit has passed the hub: from here on nothing can collide with it."""
        now = self.sched.now
        if tx.garbled:
            self._report(tx, now)   # a late collision (no CSMA/CD) is known only now
            return
        if self._taps:
            frame = tx.data[:-4]
            for fn in self._taps:
                fn(now, frame)
        st = tx.st
        for j in self.stations:
            if j is not st:
                self.sched.call_at(now + j.a, self._deliver_to, j, tx.data, tx.fid)

    def _deliver_to(self, j: _Station, data: bytes, fid: int) -> None:
        if self.log.full:
            self.log.record(self.sched.now, fid, self.name, "delivered", to=j.name)
        j.nic._deliver(data, fid, self)

    def _prune(self, now: int) -> None:
        # Forget transmissions whose signal has left every station (plus a gap): they can
        # no longer be sensed nor collide. Keeps the scan in _attempt/_start short.
        horizon = now - 2 * self._max_a - self.ifg
        txs = self._txs
        if txs and txs[0].end < horizon:
            self._txs = [t for t in txs if t.end >= horizon or t.st.tx is t]


# ------------------------------------------------------------------------------------------
# Switch
# ------------------------------------------------------------------------------------------

class _Port:
    """A switch port: the switch-side endpoint of the link to one station."""

    __slots__ = ("switch", "index", "name", "tx", "medium")

    def __init__(self, switch: "Switch", index: int):
        self.switch = switch
        self.index = index
        self.name = f"{switch.name}.p{index}"
        self.tx = None
        self.medium = None

    def _attach(self, medium, tx) -> None:
        self.medium = medium
        self.tx = tx

    def _deliver(self, data: bytes, fid: int, medium) -> None:
        self.switch._input(self, data, fid)


class Switch:
    """A learning, store-and-forward Ethernet switch.

    ``attach(nic, params)`` makes a new port and a :class:`Link` (with ``params``) between
    the NIC and the port; it returns the link (for taps, faults, down/up). A frame is
    processed once it has fully arrived (store-and-forward): frames that fail the FCS check
    are dropped (``fcs_drop``, ``eth.rx_fcs_errors`` in ``switch.counters``); the source MAC
    is learned on the ingress port; the frame goes out the learned port of its destination,
    or is flooded to every other port when the destination is broadcast/multicast, unknown
    or older than ``aging`` ns. A frame whose destination is on its ingress port is filtered.
    The table holds at most ``table_limit`` addresses; when full, new ones are not learned
    (their frames are flooded, as on a real switch whose CAM table is full).
    A forwarded frame keeps its id, so ``log.why(id)`` follows it across the switch.
    """

    kind = "switch"

    def __init__(self, sched, name: str = "switch", aging: int = 300 * SEC,
                 log: DecisionLog | None = None, seed: Any = 0, rng: random.Random | None = None,
                 latency: int = 0, table_limit: int = 8192, check_fcs: bool = True):
        from wirestack.trace.counters import Counters
        self.sched = sched
        self.name = name
        self.aging = aging
        self.log = log if log is not None else DecisionLog()
        self.log.register_medium(name, self.kind)
        self.latency = latency
        self.table_limit = table_limit
        self.check_fcs = check_fcs
        self.counters = Counters()
        self._seed = seed
        self._rng = rng
        self.ports: list[_Port] = []
        self.links: list[Link] = []
        self._table: dict[bytes, tuple[int, int]] = {}   # mac -> (port index, last seen)
        self._taps: list[Callable[[int, bytes], object]] = []

    def __repr__(self) -> str:
        return f"<Switch {self.name} {len(self.ports)} ports>"

    def attach(self, nic, params: LinkParams | None = None, b_to_a: LinkParams | None = None,
               name: str | None = None) -> Link:
        """``name`` names the link (and so its random streams); by default it is the NIC's
        name and the switch port's, which depends on the attach order."""
        port = _Port(self, len(self.ports))
        self.ports.append(port)
        seed = self._seed
        if seed is None and self._rng is not None:
            seed = self._rng.getrandbits(64)
        link = Link(self.sched, nic, port, params or LinkParams(), b_to_a, seed=seed,
                    log=self.log, name=name or f"{getattr(nic, 'name', '?')}<->{port.name}")
        self.links.append(link)
        return link

    def add_tap(self, fn: Callable[[int, bytes], object]) -> None:
        """``fn(now, frame_without_fcs)`` for every intact frame the switch receives."""
        self._taps.append(fn)

    def mac_table(self) -> dict[str, int]:
        """Learned, unexpired addresses: {"02:00:00:00:00:01": port index}."""
        now = self.sched.now
        return {mac.hex(":"): port for mac, (port, seen) in sorted(self._table.items())
                if now - seen < self.aging}

    def _input(self, port: _Port, data: bytes, fid: int) -> None:
        now = self.sched.now
        log = self.log
        if len(data) < 18:
            self.counters.incr("eth.rx_runts")
            if log.enabled:
                log.record(now, fid, self.name, "runt", by=port.name, size=len(data))
            return
        if self.check_fcs and zlib.crc32(data) != FCS_RESIDUE:
            self.counters.incr("eth.rx_fcs_errors")
            if log.enabled:
                log.record(now, fid, self.name, "fcs_drop", by=port.name)
            return
        if self._taps:
            frame = data[:-4]
            for fn in self._taps:
                fn(now, frame)
        src = data[6:12]
        if not src[0] & 1:   # a group address is never a source; never learn it
            table = self._table
            if src in table or len(table) < self.table_limit:
                table[src] = (port.index, now)
        if self.latency:
            self.sched.call_at(now + self.latency, self._forward, port, data, fid)
        else:
            self._forward(port, data, fid)

    def _forward(self, port: _Port, data: bytes, fid: int) -> None:
        now = self.sched.now
        log = self.log
        if not data[0] & 1:
            dst = data[:6]
            entry = self._table.get(dst)
            if entry is not None:
                out, seen = entry
                if now - seen < self.aging:
                    if out == port.index:
                        if log.full:
                            log.record(now, fid, self.name, "filtered", by=port.name)
                        return
                    if log.full:
                        log.record(now, fid, self.name, "forwarded", port=out, flood=False)
                    self.ports[out].tx(data, fid)
                    return
                del self._table[dst]  # aged out: forget, and flood like an unknown address
        for p in self.ports:
            if p is not port:
                if log.full:
                    log.record(now, fid, self.name, "forwarded", port=p.index, flood=True)
                p.tx(data, fid)
