"""One TCP connection: the TCB (``tcb``) and everything that happens to it, organised
like RFC 9293 §3.10:

==================  ==========================================================
``tcb.py``          the fields (typed), naming, logging, state changes, teardown
``output.py``       sending: data, SYN, retransmissions, our window, SACK option
``timers.py``       RTO, persist, delayed ACK, keep-alive, user timeout, TIME_WAIT
``opening.py``      OPEN, CLOSE, ABORT, the SYN options, ICMP errors
``segment_arrives.py``  §3.10.7: one method per step (acceptability/PAWS, RST, SYN,
                    ACK, URG, text, FIN)
``recovery.py``     duplicate ACKs, NewReno and SACK loss recovery (an object)
==================  ==========================================================

Each part is a class that extends the one before it (TCB -> output -> timers -> opening
-> segment arrival), so a part only calls what is below it.
"""

from __future__ import annotations

from .segment_arrives import SegmentArrives
from .tcb import DEFAULT_MSS, wscale_for


class Connection(SegmentArrives):
    """A TCP connection; the layer demultiplexes segments to it and runs its timers."""

    __slots__ = ()


__all__ = ["DEFAULT_MSS", "Connection", "wscale_for"]
