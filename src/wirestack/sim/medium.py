"""What the simulated media (link, hub, switch) share: serialisation time, their random
streams, the decoder scripted faults match frames with.

A medium talks to its endpoints through the endpoint interface that
:class:`~wirestack.sim.nic.Nic` implements (see :mod:`wirestack.sim.media`).
"""

from __future__ import annotations

import random

from wirestack.units import SEC

NEVER = -(1 << 62)   # "long ago" for last-activity times


def bits_ns(bits: int, rate_bps: int) -> int:
    """Time to clock ``bits`` out at ``rate_bps``, in whole ns (rounded up, so a frame never
    takes zero time on a finite-rate medium)."""
    return -(-bits * SEC // rate_bps)


def derive_rng(seed, rng: random.Random | None, label: str) -> random.Random:
    """The random stream for one part of a medium. With an explicit seed it depends only on
    (seed, label): adding a link elsewhere in the network cannot shift this one's decisions.
    String seeding is hashed with SHA-512 by ``random``, so it is stable across processes."""
    if seed is not None:
        return random.Random(f"wirestack:{seed}:{label}")
    if rng is not None:
        return random.Random(f"wirestack:{rng.getrandbits(64)}:{label}")
    return random.Random(f"wirestack:0:{label}")


def default_decode(frame: bytes):
    # Imported lazily: only links with scripted faults need the codecs. Checksums are not
    # verified so a fault can match (say) a TCP segment that an earlier fault corrupted.
    from wirestack.wire import parse_frame
    return parse_frame(frame, verify_checksums=False)
