"""The transmission control block (TCB) of one connection (RFC 9293 §3.3.1), typed, and
the few things every part of the engine does with it: name it in the event log, change
its state (the one place, checked against the state diagram), tell the application,
end it.

The engine around it is split as RFC 9293 §3.10 is: ``output`` (sending, retransmission,
the window and SACK options we send), ``timers`` (RTO, persist, delayed ACK, keep-alive,
user timeout, TIME_WAIT), ``opening`` (OPEN, CLOSE, ABORT and the handshake's options) and
``segment_arrives`` (§3.10.7, one function per step). ``connection.Connection`` is them
all together.

Sequence numbers inside the TCB are *unwrapped* Python ints: every 32-bit number that
arrives is mapped to the int nearest to a reference (RCV.NXT for SEG.SEQ, SND.UNA for
SEG.ACK), so comparisons are plain ``<`` instead of modular arithmetic, and only the wire
sees the 32-bit value (``seq.wrap``). Valid segments are always within 2**31 of the
reference, so the mapping is exact for them (RFC 9293 §3.4; the arithmetic is ``seq.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..storage import Assembler, ByteFifo
from ..trace.counters import Counters
from ..trace.events import EventLog
from ..wire.tcp import SegmentTemplate
from . import congestion
from .config import TcpConfig
from .congestion.base import CongestionControl
from .recovery import LossRecovery
from .rtt import RttEstimator
from .seq import wrap
from .states import CLOSED, TRANSITIONS, State

if TYPE_CHECKING:
    from .layer import TcpLayer
    from .listener import Listener
    from .socket import TcpSocket

DEFAULT_MSS = 536          # RFC 9293 §3.7.1: assumed when the peer sends no MSS option


def our_mss_for(cfg: TcpConfig, mtu: int) -> int:
    """The MSS we announce towards a path of this MTU: the MTU less 40 bytes of IPv4 and TCP
    headers (RFC 9293 §3.7.1), capped by the configured ``mss``."""
    mss = mtu - 40
    return min(cfg.mss, mss) if cfg.mss else mss


def syn_window(buf: int) -> int:
    """The window a SYN or SYN,ACK offers for a receive buffer of ``buf`` bytes: never
    scaled (RFC 7323 §2.2), so at most 65535."""
    return buf if buf < 0xFFFF else 0xFFFF


def wscale_for(buf: int) -> int:
    """The smallest shift that lets a 16-bit field describe ``buf`` (RFC 7323 §2.3, max 14)."""
    s = 0
    while (buf >> s) > 0xFFFF and s < 14:
        s += 1
    return s


@dataclass(slots=True, init=False, eq=False, repr=False)
class Tcb:
    # who and where
    layer: TcpLayer
    cfg: TcpConfig
    log: EventLog
    counters: Counters
    lip: bytes
    lport: int
    rip: bytes
    rport: int
    key: tuple[bytes, int, bytes, int]
    _name: str | None
    state: State
    sock: TcpSocket | None
    listener: Listener | None
    passive: bool
    deferred: bool              # sndq, cc and recovery not made yet (see __init__)
    detached: bool
    error: OSError | None
    soft_error: OSError | None
    # send sequence space (RFC 9293 §3.3.1)
    iss: int
    snd_una: int
    snd_nxt: int
    snd_max: int
    snd_wnd: int
    snd_wl1: int
    snd_wl2: int
    max_snd_wnd: int
    snd_wscale: int
    snd_mss: int
    peer_mss: int
    our_mss: int
    sndq: ByteFifo
    sbase: int                  # sequence number of sndq's first byte (after the SYN)
    fin_queued: bool
    fin_seq: int | None
    nodelay: bool
    # receive sequence space
    irs: int
    rcv_nxt: int
    rcv_adv: int
    rcv_wscale: int
    rcv_cap: int
    rcvq: ByteFifo
    asm: Assembler | None
    fin_rcvd: bool
    ooo_fin: int | None
    _sws: int
    ack_now: bool
    delack_segs: int
    ooo_acks: int               # duplicate ACKs still owed for a merged out-of-order segment
    last_ack_sent: int
    # timers (absolute ns deadlines or None) and their bookkeeping
    t_rtx: int | None
    t_persist: int | None
    t_delack: int | None
    t_tw: int | None
    timer_at: int | None        # the deadline the layer's timer heap holds
    output_pending: bool        # queued for output() at the layer's next poll
    rtt: RttEstimator
    rtt_seq: int | None
    rtt_time: int
    retries: int
    syn_rexmits: int
    persist_backoff: int
    probes: int
    # congestion control and loss recovery
    cc: CongestionControl
    recovery: LossRecovery
    rtx_reason: str
    # is cwnd used? (congestion window validation, see Output.send_data and _ack_new)
    cwnd_full: bool             # in this window of data, cwnd was full after a send
    max_flight: int             # the most bytes in flight after a send in this window
    use_end: int                # the window of data ends when SND.UNA reaches this
    cwnd_idle_since: int | None  # when ACKs began to leave cwnd as it was (unused)
    last_send: int              # when data last left (RFC 5681 §4.1's idle period)
    # RFC 7323
    ws_ok: bool
    ts_ok: bool
    ts_recent: int
    ts_offset: int
    # RFC 5961 §7: time of the last ACK sent in answer to an unacceptable segment
    _oow_ack_time: int | None
    # RFC 2018 / 2883 / 6675: SACK
    sack_ok: bool
    dsack_ok: bool
    _dsack: tuple[int, int] | None
    _sack_due: bool
    # keep-alive (RFC 9293 §3.8.4) and user timeout (RFC 9293 §3.8.3, RFC 5482)
    t_ka: int | None
    ka_probes: int
    ka_sent: int
    last_rx: int
    t_ut: int | None
    ut_time: int
    user_timeout: int | None
    # statistics
    segs_in: int
    segs_out: int
    bytes_in: int
    bytes_out: int
    retransmits: int
    # the header template: ports and the checksum words fixed for this connection
    tpl: SegmentTemplate

    def __init__(self, layer: TcpLayer, cfg: TcpConfig, lip: bytes, lport: int, rip: bytes,
                 rport: int, now: int, passive: bool = False, *, iss: int | None = None,
                 ts_offset: int | None = None, tpl: SegmentTemplate | None = None,
                 our_mss: int | None = None) -> None:
        """``passive``: a listener's child, made by the peer's SYN. It goes without the send
        buffer, the congestion controller and the loss recovery until ESTABLISHED
        (``make_deferred``): the SYN,ACK needs none of them, and what is done between the
        SYN and the SYN,ACK is the client's connect() time (Linux's request_sock spares
        the same work). The rare paths that touch one earlier (``set_iss``, ``stats``, an
        ICMP error, a close in SYN_RECEIVED) make them first, the same as they would have
        been made here. (Not by a ``__getattr__`` fallback: a class with one loses the
        interpreter's fast attribute access on every field, the data path's too.)

        ``iss``, ``ts_offset``, ``tpl``, ``our_mss``: already chosen -- by a listener that
        answered the SYN before it made the child (``Listener.input``)."""
        self.layer = layer
        self.cfg = cfg
        self.log = layer.log
        self.counters = layer.counters
        self.lip, self.lport, self.rip, self.rport = lip, lport, rip, rport
        self.key = (lip, lport, rip, rport)
        self._name = None
        self.state = CLOSED
        self.sock = None
        self.listener = None
        self.passive = passive
        self.detached = False
        self.error = None
        self.soft_error = None

        if iss is None:
            iss = layer.initial_seq(lip, lport, rip, rport, now)
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_wscale = 0
        self.our_mss = our_mss_for(cfg, layer.mtu_for(rip)) if our_mss is None else our_mss
        self.peer_mss = DEFAULT_MSS
        self.snd_mss = min(DEFAULT_MSS, self.our_mss)
        self.sbase = iss + 1          # sequence number of sndq's first byte (after the SYN)
        self.fin_queued = False
        self.fin_seq = None
        self.nodelay = cfg.nodelay

        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0               # right edge of the window we advertised (never shrinks)
        self.rcv_wscale = wscale_for(cfg.rcvbuf) if cfg.window_scaling else 0
        self.rcv_cap = cfg.rcvbuf
        # Rounding the scaled window up may promise up to 2**wscale bytes more than the
        # buffer size, so the byte store has that much slack (RFC 7323 §2.4).
        self.rcvq = ByteFifo(cfg.rcvbuf + (1 << self.rcv_wscale))
        self.asm = None                # out-of-order assembler, made on first need
        self.fin_rcvd = False
        self.ooo_fin = None            # sequence number of a FIN that arrived out of order
        self._sws = min(cfg.rcvbuf // 2, self.our_mss)   # RFC 9293 §3.8.6.2.2 threshold
        self.ack_now = False
        self.delack_segs = 0
        self.ooo_acks = 0
        self.last_ack_sent = 0

        self.t_rtx = self.t_persist = self.t_delack = self.t_tw = None
        self.timer_at = None
        self.output_pending = False
        self.rtt = RttEstimator(cfg.rto_initial, cfg.rto_min, cfg.rto_max)
        self.rtt_seq = None            # RTT timing: the ACK that ends the measurement...
        self.rtt_time = 0              # ...of the segment sent at this time
        self.retries = 0
        self.syn_rexmits = 0
        self.persist_backoff = 0
        self.probes = 0

        self.cwnd_full = False
        self.max_flight = 0
        self.use_end = 0               # (no window of data yet: the first send starts one)
        self.cwnd_idle_since = None
        self.last_send = now

        self.deferred = True
        if not passive:
            self.make_deferred(True)
        self.rtx_reason = "rto"

        self.ws_ok = False
        self.ts_ok = False
        self.ts_recent = 0
        # RFC 7323 §5.4: a random TSval offset
        self.ts_offset = layer.rng.getrandbits(32) if ts_offset is None else ts_offset
        self._oow_ack_time = None

        self.sack_ok = False           # both SYNs carried SACK-permitted (RFC 2018 §2)
        self.dsack_ok = False
        self._dsack = None             # RFC 2883: a duplicate range to report in the next ACK
        self._sack_due = False         # SACK blocks to send: out-of-order data held or a D-SACK

        self.t_ka = None
        self.ka_probes = 0
        self.ka_sent = 0
        self.last_rx = now
        self.t_ut = None
        self.ut_time = now
        self.user_timeout = cfg.user_timeout

        self.segs_in = self.segs_out = self.bytes_in = self.bytes_out = 0
        self.retransmits = 0
        # The header template: ports and the checksum words fixed for this connection.
        self.tpl = SegmentTemplate(lip, rip, lport, rport) if tpl is None else tpl

    def make_deferred(self, with_cc: bool) -> None:
        """Make the send buffer, the loss recovery (dup ACKs, fast/SACK recovery, the
        scoreboard) and, ``with_cc``, the initial congestion controller (before the
        handshake's MSS is known; ESTABLISHED makes the real one)."""
        self.deferred = False
        cfg = self.cfg
        self.sndq = ByteFifo(cfg.sndbuf)
        self.recovery = LossRecovery(self.iss)
        if with_cc:
            self.cc = congestion.get(cfg.congestion_control)(min(DEFAULT_MSS, self.our_mss),
                                                             cfg.initial_window)

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = "%d.%d.%d.%d:%d>%d.%d.%d.%d:%d" % (*self.lip, self.lport, *self.rip, self.rport)
        return self._name

    def record(self, now: int, kind: str, **fields: Any) -> None:
        self.log.record(now, kind, conn=self.name, **fields)

    def log_cwnd(self, now: int, reason: str) -> None:
        if self.log.enabled:
            self.record(now, "cwnd", cwnd=self.cc.cwnd, ssthresh=self.cc.ssthresh,
                        reason=reason, seq=wrap(self.snd_una), ack=wrap(self.rcv_nxt))

    def _set_state(self, new: State, now: int) -> None:
        """The one place where the state changes (RFC 9293 §3.3.2 Figure 5)."""
        old = self.state
        if new not in TRANSITIONS[old]:
            raise AssertionError(f"TCP transition {old} -> {new} is not in the state diagram")
        self.state = new
        if self.log.enabled:
            self.record(now, "state", old=old, new=new, seq=wrap(self.snd_nxt),
                        ack=wrap(self.rcv_nxt))
        self.notify()

    def notify(self) -> None:
        """Something the application may wait for changed (state, data, room, error)."""
        sock = self.sock
        if sock is not None:
            self.layer.notify(sock)

    def _fail(self, err: OSError, now: int) -> None:
        """The connection ends with an error the application will see."""
        self.error = err
        if self.log.enabled:
            self.record(now, "error", error=type(err).__name__, seq=wrap(self.snd_una),
                        ack=wrap(self.rcv_nxt))
        if self.state is not CLOSED:
            self._set_state(CLOSED, now)
        self._teardown()

    def _teardown(self) -> None:
        self.t_rtx = self.t_persist = self.t_delack = self.t_tw = self.t_ka = self.t_ut = None
        self.timer_at = None
        if not self.deferred:
            self.sndq.clear()
        self.asm = None
        self._sack_due = False
        self.layer.remove(self)
        self.notify()

    def discard(self, now: int) -> None:
        """The TCB goes without a word (CLOSED): a child the listener drops, a TIME_WAIT
        that a new SYN ends (RFC 9293 §3.6.1)."""
        self._set_state(CLOSED, now)
        self._teardown()
