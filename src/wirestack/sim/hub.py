"""A shared medium: a repeater hub, with or without CSMA/CD (carrier sense, collision,
jam, truncated binary exponential backoff; IEEE 802.3 §4.2, simplified)."""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable

from wirestack.units import SEC

from .decisions import DecisionLog
from .medium import NEVER, bits_ns, derive_rng


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
        self.last_end = NEVER
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
        self.slot_time = slot_time if slot_time is not None else bits_ns(512, rate_bps)
        self.jam_time = bits_ns(32, rate_bps)
        self.ifg = bits_ns(96, rate_bps)
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
        st = _Station(nic, index, a, derive_rng(self._seed, self._rng, f"{self.name}:{label}"))
        self.stations.append(st)
        self._max_a = max(self._max_a, a)
        nic.attach(self, lambda data, st=st: self._enqueue(st, data))

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
        tx = _Tx(st, data, fid, now, now + bits_ns((len(data) + 8) * 8, self.rate_bps))
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
        j.nic.deliver(data, fid, self)

    def _prune(self, now: int) -> None:
        # Forget transmissions whose signal has left every station (plus a gap): they can
        # no longer be sensed nor collide. Keeps the scan in _attempt/_start short.
        horizon = now - 2 * self._max_a - self.ifg
        txs = self._txs
        if txs and txs[0].end < horizon:
            self._txs = [t for t in txs if t.end >= horizon or t.st.tx is t]
