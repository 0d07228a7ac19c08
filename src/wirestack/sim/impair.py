"""Impairment models (per link direction) and scripted faults.

:class:`LinkParams` describes one direction of a link: rate, delay, jitter, queue, MTU and
the random impairments (loss, Gilbert-Elliott bursty loss, duplication, reordering,
corruption, truncation). Every random decision is drawn from the direction's own
``random.Random``, and a draw is only made for an impairment that is switched on, so the
same parameters and seed give the same decisions, frame for frame.

:class:`Fault` is a scripted, deterministic impairment: "drop the 3rd SYN", "corrupt every
echo reply between t=1 s and t=2 s".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from wirestack.units import MS

FAULT_ACTIONS = ("drop", "corrupt", "duplicate", "delay", "truncate")


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


@dataclass
class LinkParams:
    """One direction of a link.

    rate_bps      bits per second; None = infinite (no serialization delay, no queue).
                  Serialization of a frame = its bits (FCS included; preamble and
                  inter-frame gap are not modelled on a point-to-point link) / rate,
                  rounded up to a whole ns.
    delay         propagation delay, ns.
    jitter        ns; each frame's propagation is delay + a draw from ``jitter_dist``:
                  'uniform' = U[-jitter, +jitter], 'normal' = N(0, jitter) (jitter is the
                  standard deviation), clamped so the propagation is never negative.
    keep_order    True (default): jitter never lets a frame overtake an earlier one, like a
                  real cable (a frame is held until the one before it has arrived). False:
                  jitter may reorder frames, as netem's jitter does.
    queue_limit   frames that may wait for the transmitter (drop-tail); the frame being
                  serialized is not counted. Only meaningful with a finite rate.
    mtu           largest payload (frame minus 14-byte header and FCS); bigger frames are
                  dropped (``mtu_exceeded``). None = no limit.
    loss          independent loss probability per frame.
    gilbert       (p_good_to_bad, p_bad_to_good, loss_in_bad, loss_in_good) Gilbert-Elliott
                  bursty loss; a 2-tuple means loss_in_bad=1, loss_in_good=0. The state
                  moves first, then the frame is lost with the new state's probability.
                  Mean burst length (loss_in_bad=1) = 1 / p_bad_to_good.
    duplicate     probability that the frame is delivered twice (the copy gets a new id).
    reorder       probability that the frame is held back ``reorder_delay`` extra ns so
                  later frames overtake it.
    corrupt       probability that ``corrupt_bits`` distinct random bits of the frame (FCS
                  included) are flipped.
    truncate      probability that the frame is cut to a random shorter length (1..len-1).
    """

    rate_bps: int | None = None
    delay: int = 0
    jitter: int = 0
    jitter_dist: str = "uniform"
    keep_order: bool = True
    queue_limit: int = 1000
    mtu: int | None = 1500
    loss: float = 0.0
    gilbert: tuple | None = None
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: int = 1 * MS
    corrupt: float = 0.0
    corrupt_bits: int = 1
    truncate: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError("rate_bps must be positive or None")
        if self.delay < 0 or self.jitter < 0 or self.reorder_delay < 0:
            raise ValueError("delay, jitter and reorder_delay must be >= 0")
        if self.jitter_dist not in ("uniform", "normal"):
            raise ValueError("jitter_dist must be 'uniform' or 'normal'")
        if self.queue_limit is not None and self.queue_limit < 0:
            raise ValueError("queue_limit must be >= 0")
        if self.corrupt_bits < 1:
            raise ValueError("corrupt_bits must be >= 1")
        for name in ("loss", "duplicate", "reorder", "corrupt", "truncate"):
            _check_prob(name, getattr(self, name))
        if self.gilbert is not None:
            g = tuple(self.gilbert)
            if len(g) == 2:
                g = (g[0], g[1], 1.0, 0.0)
            if len(g) != 4:
                raise ValueError("gilbert is (p_good_to_bad, p_bad_to_good, loss_in_bad, loss_in_good)")
            for name, p in zip(("p_good_to_bad", "p_bad_to_good", "loss_in_bad", "loss_in_good"), g):
                _check_prob(f"gilbert {name}", p)
            self.gilbert = g

    def is_plain(self) -> bool:
        """True when no random impairment is on: the link can take its fast path."""
        return not (self.jitter or self.loss or self.gilbert or self.duplicate or self.reorder
                    or self.corrupt or self.truncate)


@dataclass(eq=False)
class Fault:
    """A scripted impairment.

    action   'drop' | 'corrupt' (flip ``bits`` random bits) | 'duplicate' | 'delay' (hold
             the frame ``delay`` extra ns; later frames overtake it) | 'truncate'.
    match    ``match(frame) -> bool`` on the decoded frame (``wirestack.wire.parse_frame``,
             checksums not verified, so a damaged frame still matches); a frame that does
             not decode does not match. None matches every frame (and nothing is decoded).
    nth      fire only on the nth matching frame (1-based).
    every    fire on every ``every``-th matching frame.
    start, end  virtual-time window [start, end) in ns, checked when the frame is sent;
             frames outside it are not counted as matching.
    count    fire at most this many times.
    frame    fire only on the frame with this decision-log id (``net.decisions`` numbering,
             the ``#N`` of captures and ladders): "what if frame 17 had been lost?". A re-run
             with the same seed numbers frames identically up to the change.

    A Fault counts matches itself; adding the same Fault object to both directions of a
    link (``link.add_fault(f)``) counts frames of both directions together.
    """

    action: str
    match: Callable[[Any], bool] | None = None
    nth: int | None = None
    every: int | None = None
    start: int | None = None
    end: int | None = None
    count: int | None = None
    delay: int = 0
    bits: int = 1
    name: str = ""
    frame: int | None = None
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            raise ValueError(f"action must be one of {FAULT_ACTIONS}, not {self.action!r}")
        if self.nth is not None and self.nth < 1:
            raise ValueError("nth is 1-based")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if self.bits < 1 or self.delay < 0:
            raise ValueError("bits must be >= 1 and delay >= 0")
        if not self.name:
            self.name = self.action + (f"#nth={self.nth}" if self.nth else "") + (
                f"#every={self.every}" if self.every else "") + (
                f"#frame={self.frame}" if self.frame is not None else "")

    def in_window(self, now: int) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def decide(self, now: int, frame_obj_fn: Callable[[], Any], fid: int | None = None) -> bool:
        """Does this fault fire for the frame being sent now? ``frame_obj_fn()`` returns the
        decoded frame or None when it does not decode (called only if a match is set);
        ``fid`` is the frame's decision-log id."""
        if self.exhausted() or not self.in_window(now):
            return False
        if self.frame is not None and fid != self.frame:
            return False
        if self.match is not None:
            obj = frame_obj_fn()
            if obj is None or not self.match(obj):
                return False
        self.matched += 1
        if self.nth is not None and self.matched != self.nth:
            return False
        if self.every is not None and self.matched % self.every:
            return False
        self.fired += 1
        return True


def flip_bits(data: bytes, rng, nbits: int) -> tuple[bytes, list[int]]:
    """Flip ``nbits`` distinct random bits; returns (new bytes, sorted bit positions, bit 0 =
    most significant bit of byte 0)."""
    total = len(data) * 8
    nbits = min(nbits, total)
    positions = sorted(rng.sample(range(total), nbits))
    buf = bytearray(data)
    for pos in positions:
        buf[pos >> 3] ^= 0x80 >> (pos & 7)
    return bytes(buf), positions
