"""Loss recovery of one connection: duplicate ACKs, NewReno fast recovery (RFC 5681 §3.2,
RFC 6582), SACK-based recovery (RFC 6675) with its scoreboard, the rescue retransmission
(RFC 6675 §4 rule 4) and lost-retransmission detection (the idea of RFC 8985 §6.2).

The connection owns sending (``retransmit_range``, ``send_data``) and the timers; this
object owns the recovery state and decides *what* to send again and when recovery starts
and ends. ``reset`` forgets a recovery episode (full ACK, retransmission timeout). The
congestion controller (``congestion``) keeps the window arithmetic.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from .sack import DUP_THRESH, Scoreboard
from .seq import wrap

if TYPE_CHECKING:
    from .output import Output


class LossRecovery:
    __slots__ = ("dupacks", "dupacks_total", "in_recovery", "recover", "limited", "sb",
                 "sack_rec", "high_rxt", "rescue_rxt", "rtxq", "relost", "relost_bytes")

    def __init__(self, iss: int) -> None:
        self.dupacks = 0               # consecutive duplicate ACKs (RFC 5681 §2)
        self.dupacks_total = 0         # all of them, for stats()
        self.in_recovery = False       # fast recovery / SACK recovery in progress
        self.recover = iss             # RFC 6582 "recover" = RFC 6675 RecoveryPoint
        self.limited = 0               # RFC 3042 limited transmit allowance (bytes)
        self.sb: Scoreboard | None = None   # the sender's scoreboard, once SACK is agreed
        self.sack_rec = False          # in_recovery driven by RFC 6675 (else RFC 6582)
        self.high_rxt = iss            # RFC 6675 HighRxt (exclusive end here)
        self.rescue_rxt: int | None = None   # RFC 6675 RescueRxt (None: undefined)
        self.rtxq: list[list[int]] = []      # [start, end, mark] of this recovery's retransmissions
        self.relost: list[tuple[int, int]] = []   # retransmissions found lost, to send again
        self.relost_bytes = 0          # their bytes, taken out of pipe until sent again

    def set_iss(self, iss: int) -> None:
        self.recover = self.high_rxt = iss

    def reset(self, una: int) -> None:
        """The recovery episode is over (a full ACK, or a retransmission timeout): no
        recovery, no duplicate ACKs counted, HighRxt back at SND.UNA, no rescue, no
        retransmissions remembered. ``recover`` stays (RFC 6582 §3.2 step 2 needs it)."""
        self.in_recovery = False
        self.sack_rec = False
        self.dupacks = 0
        self.high_rxt = una
        self.rescue_rxt = None
        self.rtxq.clear()
        self.relost.clear()
        self.relost_bytes = 0

    # ------------------------------------------------------------------ duplicate ACKs
    def on_dupack(self, conn: Output, a: int, now: int) -> None:
        """RFC 5681 §2 duplicate ACK; the third starts fast retransmit (§3.2)."""
        self.dupacks += 1
        self.dupacks_total += 1
        conn.counters.incr("tcp.in_dupacks")
        if conn.log.enabled:
            conn.record(now, "dupack", seq=wrap(conn.snd_nxt), ack=wrap(a), count=self.dupacks)
        if not conn.cfg.fast_retransmit:
            return
        if self.in_recovery:
            if self.sack_rec:
                # RFC 6675: no window inflation, pipe accounts for what left the network.
                if conn.log.enabled:
                    self.log_scoreboard(conn, now, "scoreboard", event="dupack")
            else:
                conn.cc.on_recovery_dupack()
            return
        sb = self.sb
        if sb and a >= self.recover and (self.dupacks >= 3 or sb.lost_edge(a, conn.snd_mss) > a):
            # RFC 6675 §5 steps (1), (2): DupThresh duplicates, or IsLost(HighACK + 1).
            self._enter_sack_recovery(conn, a, now)
            return
        if self.dupacks < 3 and conn.snd_nxt == conn.snd_max:
            # RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new
            # segment out, so that a small window can still produce three duplicates.
            self.limited = self.dupacks * conn.snd_mss
        if self.dupacks == 3 and a >= self.recover:
            # RFC 6582 §3.2 step 2: enter fast recovery, remember the highest sequence sent.
            self.in_recovery = True
            self.recover = conn.snd_max
            conn.cc.on_loss_fast(conn.snd_max - a, now)
            conn.counters.incr("tcp.fast_retransmits")
            self.limited = 0
            conn.log_cwnd(now, "fast_retransmit")
            conn.rtx_reason = "fast"
            conn.retransmit_first(now)
            if conn.cfg.retransmission:
                conn.t_rtx = now + conn.rtt.rto

    # ------------------------------------------------------------------ ACKs of new data
    def on_ack_in_recovery(self, conn: Output, a: int, acked: int, now: int) -> None:
        """SND.UNA advanced to ``a`` during recovery: a full ACK ends it, a partial ACK
        (RFC 6582 §3.2 step 5) sends the next hole again."""
        cc = conn.cc
        if a >= self.recover:
            # Full ACK (RFC 6582 §3.2 step 6; RFC 6675 §5 (A)): leave recovery. The
            # scoreboard above the new SND.UNA is kept (RFC 6675 §5 (A)).
            self.in_recovery = False
            cc.on_recovery_exit(conn.snd_max - a, now)
            conn.log_cwnd(now, "recovery_exit")
            if self.sack_rec:
                self.sack_rec = False
                if conn.log.enabled:
                    self.log_scoreboard(conn, now, "sack_recovery", phase="exit")
            self.reset(a)
        elif self.sack_rec:
            # RFC 6675 §5 (B): the scoreboard is updated; (C) runs in output().
            if conn.log.enabled:
                self.log_scoreboard(conn, now, "scoreboard", event="partial_ack")
        else:
            # Partial ACK (RFC 6582 §3.2 step 5): the next hole is lost too.
            cc.on_partial_ack(acked)
            conn.rtx_reason = "partial_ack"
            conn.retransmit_first(now)
            conn.log_cwnd(now, "partial_ack")

    def on_rto(self, conn: Output, now: int) -> None:
        """A retransmission timeout ends any recovery (RFC 6582 §3.2 step 1 analogue: dup
        ACKs for data sent before it must not trigger another fast retransmit)."""
        self.in_recovery = False
        self.recover = conn.snd_max
        self.dupacks = 0
        sb = self.sb
        if sb is not None:
            # RFC 6675 §5.1: recovery ends, RecoveryPoint = HighData is kept. The
            # scoreboard survives the first timeout (the go-back-N then skips SACKed data,
            # as RFC 6675 §5.1 permits); a second timeout in a row suggests the receiver
            # reneged (RFC 2018 §8), so the SACKed marks go.
            if sb and conn.retries > 1:
                sb.clear()
                conn.counters.incr("tcp.sack_scoreboard_cleared")
            self.reset(conn.snd_una)
            if conn.log.enabled:
                self.log_scoreboard(conn, now, "scoreboard", event="rto")

    # ------------------------------------------------------------------ SACK recovery
    def _enter_sack_recovery(self, conn: Output, a: int, now: int) -> None:
        """RFC 6675 §5 step (4): fast retransmit and enter loss recovery."""
        sb = self.sb
        assert sb is not None
        self.in_recovery = True
        self.sack_rec = True
        self.recover = conn.snd_max                      # (4.1) RecoveryPoint = HighData
        conn.cc.on_loss_sack(conn.snd_max - a, now)      # (4.2) ssthresh = cwnd = ...
        conn.counters.incr("tcp.fast_retransmits")
        conn.counters.incr("tcp.sack_recoveries")
        self.limited = 0
        conn.log_cwnd(now, "fast_retransmit")
        # (4.3) Retransmit the first segment presumed dropped; HighRxt and RescueRxt
        # both become its highest sequence number.
        conn.rtx_reason = "sack"
        self.rtxq.clear()
        self.relost.clear()
        self.relost_bytes = 0
        end = conn.retransmit_range(a, now, sb.next_start_after(a))
        self._note_sack_rtx(conn, a, end)
        self.high_rxt = self.rescue_rxt = end
        if conn.cfg.retransmission:
            conn.t_rtx = now + conn.rtt.rto
        if conn.log.enabled:
            self.log_scoreboard(conn, now, "sack_recovery", phase="enter")
        # (4.4), (4.5): SetPipe and step (C) run in output() at the end of this input.

    def sack_output(self, conn: Output, now: int) -> bool:
        """RFC 6675 §5 step (C): while cwnd - pipe >= 1 SMSS, send what NextSeg()
        chooses (rules 1-4 of §4, taken in order) and add it to pipe (C.4)."""
        sb = self.sb
        assert sb is not None
        una = conn.snd_una
        mss = conn.snd_mss
        if self.rtxq and conn.cfg.lost_retransmit:
            self._find_lost_rtx(conn, now)
        edge = sb.lost_edge(una, mss)
        pipe = sb.pipe(una, conn.snd_max, self.high_rxt, mss, edge) - self.relost_bytes
        cwnd = conn.cc.cwnd
        sent = False
        # Retransmissions found lost go first: they hold the oldest missing data.
        relost = self.relost
        while relost and cwnd - pipe >= mss:
            s0, e0 = relost[0]
            conn.rtx_reason = "lost_rtx"
            s2 = sb.first_hole(s0 if s0 > una else una, e0)
            if s2 is None:                               # arrived meanwhile
                del relost[0]
                self.relost_bytes -= e0 - s0
                continue
            lim = sb.next_start_after(s2)
            end = conn.retransmit_range(s2, now, e0 if lim is None or lim > e0 else lim)
            if end <= s2:
                break
            if end >= e0:
                del relost[0]
                self.relost_bytes -= e0 - s0
            else:
                relost[0] = (end, e0)
                self.relost_bytes -= end - s0
            self._note_sack_rtx(conn, s2, end)
            pipe += end - s2
            sent = True
            if s2 == una and conn.cfg.retransmission:
                # The segment at SND.UNA went out again: the timer now guards this copy
                # (as after the retransmission of RFC 6298 §5.4-5.6), or it could expire
                # before the copy's ACK can return.
                conn.t_rtx = now + conn.rtt.rto
        conn.rtx_reason = "sack"
        # Rule 1: the first un-SACKed octet above HighRxt that IsLost(), one hole at a time.
        while cwnd - pipe >= mss:
            frm = self.high_rxt if self.high_rxt > una else una
            s2 = sb.first_hole(frm, edge)
            if s2 is None:
                break
            end = conn.retransmit_range(s2, now, sb.next_start_after(s2))
            if end <= s2:
                break
            self._note_sack_rtx(conn, s2, end)
            self.high_rxt = end                          # (C.2)
            pipe += end - s2                             # (C.4)
            sent = True
        # Rule 2: new data, if the receiver's window allows.
        if cwnd - pipe >= mss and (conn.sbase + len(conn.sndq) > conn.snd_nxt or
                                   (conn.fin_queued and conn.fin_seq is not None
                                    and conn.snd_max <= conn.fin_seq)):
            before = conn.snd_max
            if conn.send_data(now, False, cwnd - pipe):
                sent = True
            pipe += conn.snd_max - before                # (C.3), (C.4)
        # Rule 3: un-SACKed data above HighRxt below the highest SACKed octet, lost or not.
        while cwnd - pipe >= mss and sb:
            frm = self.high_rxt if self.high_rxt > una else una
            s3 = sb.first_hole(frm, sb.starts[-1])
            if s3 is None:
                break
            end = conn.retransmit_range(s3, now, sb.next_start_after(s3))
            if end <= s3:
                break
            self._note_sack_rtx(conn, s3, end)
            self.high_rxt = end
            pipe += end - s3
            sent = True
        # Rule 4: one rescue retransmission per recovery, of the segment holding the
        # highest outstanding un-SACKed octet, once HighACK passed RescueRxt.
        rr = self.rescue_rxt
        if cwnd - pipe >= mss and (rr is None or una > rr) and conn.snd_max > una:
            top = conn.snd_max
            if sb and sb.ends[-1] >= top:
                top = sb.starts[-1]                      # the hole just below the last block
            data_end = conn.sbase + len(conn.sndq)
            lo = (top if top < data_end else data_end) - mss     # a FIN rides along
            prev = sb.ends[bisect_left(sb.ends, top) - 1] if sb and sb.ends[0] < top else una
            if lo < prev:
                lo = prev
            if lo < una:
                lo = una
            if top > lo:
                conn.rtx_reason = "rescue"
                conn.counters.incr("tcp.sack_rescue_rxt")
                end = conn.retransmit_range(lo, now, top if top < conn.snd_max else None)
                if end > lo:
                    self._note_sack_rtx(conn, lo, end)
                    sent = True
                self.rescue_rxt = self.recover           # HighRxt is not updated
        if conn.ack_now and not sent:
            conn.send_ack(now)
        return True

    def _note_sack_rtx(self, conn: Output, start: int, end: int) -> None:
        """Remember a retransmission sent during SACK recovery, with SND.MAX at that
        moment: every octet above it was sent (for the first time) after this copy."""
        if end > start:
            self.rtxq.append([start, end, conn.snd_max])

    def _find_lost_rtx(self, conn: Output, now: int) -> None:
        """Lost retransmissions (the idea of RACK, RFC 8985 §6.2, restricted to what RFC 6675
        cannot see). RFC 6675 marks a hole lost once, retransmits it once (NextSeg() never
        goes below HighRxt) and counts the copy in pipe until an ACK covers it: a lost
        *retransmission* is invisible to it, the cumulative ACK stops there, and only the
        RTO -- at least a second, many RTTs -- ends the stall, with cwnd = 1 SMSS.

        Each retransmission of this recovery is kept in send order with SND.MAX at the
        time it left (``mark``). Data above ``mark`` was sent after it; a network without
        reordering delivers in send order, so when the receiver SACKs more than
        (DupThresh - 1) * SMSS of that later data while the retransmitted range is still
        missing, the copy is lost -- the same evidence RFC 6675 IsLost() demands for an
        original (§4), counted in send order instead of sequence order. The range is then
        sent again within the same recovery: no RTO, and no second cwnd reduction (the
        loss belongs to the congestion event this recovery already answered). While it
        waits it leaves pipe, as both its copies are gone.

        Cheap: it runs only during SACK recovery, and the queue is in send order with
        non-decreasing marks, so the walk stops at the first copy without that evidence
        (one comparison with the highest SACKed octet rejects most calls)."""
        q = self.rtxq
        sb = self.sb
        assert sb is not None
        una = conn.snd_una
        relost = self.relost
        if relost:
            # Ranges that arrived after all (late originals) or were ACKed meanwhile.
            keep = []
            for s0, e0 in relost:
                if e0 <= una or sb.first_hole(s0 if s0 > una else una, e0) is None:
                    self.relost_bytes -= e0 - s0
                else:
                    keep.append((s0, e0))
            relost[:] = keep
        high = sb.high
        limit = (DUP_THRESH - 1) * conn.snd_mss
        snd_max = conn.snd_max
        n = 0
        for entry in q:
            s0, e0, mark = entry
            if e0 <= una or sb.first_hole(s0 if s0 > una else una, e0) is None:
                n += 1                       # delivered: forget it
                continue
            if high is None or high - mark <= limit or sb.sacked_between(mark, snd_max) <= limit:
                break
            n += 1
            if s0 < una:
                s0 = una
            relost.append((s0, e0))
            self.relost_bytes += e0 - s0
            conn.counters.incr("tcp.lost_retransmits")
            if conn.log.enabled:
                conn.record(now, "lost_retransmit", seq=wrap(s0), ack=wrap(conn.rcv_nxt),
                            len=e0 - s0)
        if n:
            del q[:n]

    def log_scoreboard(self, conn: Output, now: int, kind: str, **extra: object) -> None:
        """The scoreboard in the event log (only called when the log is enabled)."""
        sb = self.sb
        una = conn.snd_una
        mss = conn.snd_mss
        ranges = sb.ranges() if sb is not None else []
        pipe = sb.pipe(una, conn.snd_max, self.high_rxt, mss) if sb is not None else None
        conn.record(now, kind, seq=wrap(una), ack=wrap(conn.rcv_nxt),
                    sacked=[(wrap(s), wrap(e)) for s, e in ranges],
                    sacked_bytes=sb.sacked if sb is not None else 0, pipe=pipe,
                    high_rxt=wrap(self.high_rxt), recovery_point=wrap(self.recover),
                    rescue_rxt=None if self.rescue_rxt is None else wrap(self.rescue_rxt),
                    high_data=wrap(conn.snd_max), cwnd=conn.cc.cwnd,
                    ssthresh=conn.cc.ssthresh, **extra)
