"""Initial sequence numbers, RFC 6528 §3: ISN = M + F(localip, localport, remoteip,
remoteport, secretkey), where M is a clock ticking every 4 microseconds (RFC 9293 §3.4.1)
and F a keyed hash, here BLAKE2s keyed with a per-host secret."""

from __future__ import annotations

import hashlib

from .seq import wrap

_TICK_NS = 4_000  # RFC 9293 §3.4.1: the ISN clock is bound to a (roughly) 4 µs timer


def isn(secret: bytes, lip: bytes, lport: int, rip: bytes, rport: int, now: int) -> int:
    h = hashlib.blake2s(lip + lport.to_bytes(2, "big") + rip + rport.to_bytes(2, "big"),
                        key=secret, digest_size=4).digest()
    return wrap(now // _TICK_NS + int.from_bytes(h, "big"))


class IsnGenerator:
    """``isn`` for one secret, cheaper per connection: the keyed hash is set up once (a
    keyed BLAKE2s first compresses a block holding the key) and each ISN continues from
    a copy of that state. Same numbers as ``isn``."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        self._keyed = hashlib.blake2s(key=secret, digest_size=4)

    def __call__(self, lip: bytes, lport: int, rip: bytes, rport: int, now: int) -> int:
        h = self._keyed.copy()
        h.update(lip + lport.to_bytes(2, "big") + rip + rport.to_bytes(2, "big"))
        return wrap(now // _TICK_NS + int.from_bytes(h.digest(), "big"))
