"""TCP knobs: host-wide defaults in :class:`TcpConfig`; every field can be overridden per
socket (``tcp.socket(nodelay=True, congestion_control="none")``).

The boolean "learning switches" turn one mechanism off so a lab can show the problem it
solves. Times are integer nanoseconds (``wirestack.units``) except ``delack_ms``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..units import MS, SEC

if TYPE_CHECKING:
    from .congestion.base import CongestionControl


# Options the layer reads before a segment is matched to a socket (or for the whole host):
# they belong in the host's TcpConfig, and a socket that asks for them is refused.
HOST_WIDE = frozenset({"verify_checksum", "isn_secret", "ephemeral_ports", "challenge_ack_limit"})


@dataclass(frozen=True)
class TcpConfig:
    # ---- learning switches -------------------------------------------------------------
    retransmission: bool = True      # off: lost segments are never sent again (no RTO)
    congestion_control: str | type[CongestionControl] = "newreno"   # 'newreno' | 'cubic' | 'none' | a CongestionControl class
    fast_retransmit: bool = True     # off: only the RTO recovers a loss (RFC 5681 §3.2)
    nodelay: bool = False            # True switches Nagle off (RFC 9293 §3.7.4)
    delayed_ack: bool = True         # off: every segment is acknowledged at once (RFC 1122 4.2.3.2)
    karn: bool = True                # off: RTT samples also from retransmitted segments
    time_wait: bool = True           # off: skip the 2·MSL wait (RFC 9293 §3.6.1)
    ooo_buffering: bool = True       # off: out-of-order segments are dropped
    window_scaling: bool = True      # offer RFC 7323 §2 window scaling
    timestamps: bool = True          # offer RFC 7323 §3 timestamps (PAWS, echo)
    sack: bool = True                # offer RFC 2018 selective acknowledgments (+ RFC 6675 recovery)
    dsack: bool = True               # report duplicates in the first SACK block (RFC 2883)
    rst_challenge: bool = True       # RFC 5961 §3: in-window but inexact RST -> challenge ACK
    ack_check: bool = True           # RFC 5961 §5: drop segments whose ACK is too old/new
    syn_cookies: bool = True         # RFC 4987 §3.6: answer SYNs statelessly when the queue is full
    keepalive: bool = False          # RFC 9293 §3.8.4 / RFC 1122 4.2.3.6 keep-alive probes
    lost_retransmit: bool = True     # SACK recovery resends a retransmission that was lost
                                     # too, without waiting for the RTO (RFC 8985's idea)
    header_prediction: bool = True   # off: every segment takes all of RFC 9293 §3.10.7.4's
                                     # checks (the fast path reaches the same result sooner)
    hystart: bool = True             # RFC 9406 HyStart++: leave the initial slow start on an
                                     # RTT increase (NewReno and CUBIC)
    cwnd_validation: bool = True     # off: cwnd grows on every ACK of new data, even while
                                     # the application or the peer's window keeps the
                                     # sender from filling it (RFC 9438 §5.8)
    slow_start_after_idle: bool = True  # RFC 5681 §4.1: after more than an RTO without
                                     # sending data, start again from the initial window
                                     # (off: keep cwnd; Linux's tcp_slow_start_after_idle)

    # ---- timers and limits -------------------------------------------------------------
    msl: int = 30 * SEC              # maximum segment lifetime; TIME_WAIT lasts 2·MSL
    rto_initial: int = 1 * SEC       # RFC 6298 §2.1
    rto_min: int = 1 * SEC           # RFC 6298 §2.4
    rto_max: int = 60 * SEC          # RFC 6298 §2.5
    max_retries: int = 15            # data retransmissions before TimeoutError (RFC 1122 R2)
    syn_retries: int = 6             # SYN (or SYN-ACK) retransmissions before giving up
    delack_ms: int = 200             # delayed-ACK timer (RFC 1122 4.2.3.2: < 0.5 s)
    fin_wait2_timeout: int = 60 * SEC  # an orphaned FIN_WAIT_2 is not kept forever
    rcvbuf: int = 256 * 1024         # receive buffer (bounds the advertised window)
    sndbuf: int = 256 * 1024         # send buffer
    mss: int | None = None           # override the MSS we announce (None: mtu - 40)
    initial_window: int | None = None  # IW in segments; None: RFC 5681 §3.1 rule (2-4)
    ooo_max_ranges: int | None = None  # islands the out-of-order assembler (and the SACK
                                     # scoreboard) may hold; None: one per 2 KB of the buffer,
                                     # at least 64 (see ranges_for)
    backlog_max: int = 4096          # listen(backlog) is clamped to this (somaxconn)
    ephemeral_ports: tuple[int, int] = (49152, 65535)  # RFC 6335 §6 dynamic range
    isn_secret: bytes | None = None  # RFC 6528 key; None: drawn from the host's rng
    verify_checksum: bool = True
    challenge_ack_limit: int = 1000  # challenge ACKs per second, per host (RFC 5961 §7; 0: no limit)
    oow_ack_interval: int = 500 * MS  # per connection, at most one ACK per interval in answer
                                     # to segments without data that are out of window, fail
                                     # PAWS or carry an unacceptable ACK (RFC 5961 §7, like
                                     # Linux's tcp_invalid_ratelimit); stops ACK storms. 0: off
    keepalive_idle: int = 7200 * SEC   # idle time before the first probe (RFC 1122: >= 2 h)
    keepalive_interval: int = 75 * SEC  # between unanswered probes
    keepalive_probes: int = 9          # unanswered probes before the connection is dropped
    user_timeout: int | None = None    # RFC 9293 §3.8.3 / RFC 5482: give up after this long
                                       # without the peer acknowledging outstanding data

    def replace(self, **changes: Any) -> "TcpConfig":
        """A copy with some fields changed; unknown names raise TypeError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown TCP option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def ranges_for(self, buf: int) -> int:
        """The bound on out-of-order islands for a buffer of ``buf`` bytes. A window of
        scattered losses leaves up to one island per two segments; a bound far below that
        makes the receiver drop data it has room for (and the sender forget SACK
        information), so recovery from a burst of losses in a large window needs far more
        than 64. One per 2 KB caps the bookkeeping of 1-byte islands (a hostile peer) at a
        few percent of the buffer itself."""
        if self.ooo_max_ranges is not None:
            return self.ooo_max_ranges
        n = buf >> 11
        return n if n > 64 else 64

    @property
    def delack(self) -> int:
        return self.delack_ms * MS
