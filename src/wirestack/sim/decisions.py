"""The decision log of the simulated wire: why did frame 17 never arrive?

Every frame put on a medium gets a network-unique integer id (from this log's own counter,
so share one log across a network to get unique ids). Media and NICs record what they
decided about each frame as plain dicts ``{"t", "frame", "medium", "event", ...fields}``.

Levels
------
``"full"``         every decision, including the trivial ones (sent, queued, delayed,
                   delivered, forwarded, not_for_us, deferred). Costs a dict per decision.
``"impairments"``  only what changed a frame's fate: drops, corruptions, duplicates,
                   reorders, truncations, collisions, backoffs, faults. The default: a bulk
                   transfer over a clean wire records nothing, so memory stays small.
``"off"``          nothing (ids are still handed out).

Watchers (``add_watcher(fn)``) see every decision as it is made, trivial ones included,
whatever the level: a capture or a run recorder uses them to comment each frame with its
fate. While a watcher is attached the media make the trivial decisions too (a dict each),
but what the log *keeps* still follows the level.

Memory is bounded: at most ``max_entries`` entries are kept (default one million); when the
log is full the oldest entry is forgotten for each new one (``forgotten`` counts them).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator

from wirestack.trace.events import write_jsonl
from wirestack.units import SEC

LEVELS = ("full", "impairments", "off")

# Decisions that are the normal life of a frame; recorded only at level "full".
TRIVIAL = frozenset({"sent", "queued", "delayed", "delivered", "forwarded", "not_for_us",
                     "deferred", "filtered"})

# Events after which the frame (this copy) no longer exists.
TERMINAL = frozenset({"queue_overflow", "dropped_loss", "excessive_collisions", "link_down",
                      "mtu_exceeded", "fcs_drop", "runt", "nic_down", "not_for_us",
                      "filtered", "no_carrier"})


def fmt_time(t: int) -> str:
    """ns -> "1.000200 s" (microsecond resolution, exact integer arithmetic)."""
    sign = "-" if t < 0 else ""
    t = abs(t)
    return f"{sign}{t // SEC}.{t % SEC // 1000:06d} s"


def _fmt_dur(ns: int) -> str:
    a = abs(ns)  # jitter can be negative
    if a >= SEC:
        return f"{ns / SEC:.6g} s"
    if a >= 1_000_000:
        return f"{ns / 1_000_000:.6g} ms"
    if a >= 1_000:
        return f"{ns / 1_000:.6g} µs"
    return f"{ns} ns"


class DecisionLog:
    """Bounded log of per-frame decisions made by the simulated media."""

    def __init__(self, level: str = "impairments", max_entries: int = 1_000_000):
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self.forgotten = 0
        self._next_id = 0
        self._media: dict[str, str] = {}
        self._watchers: list = []
        self.level = level

    # The level is read by the media on every frame, so it is flattened into two booleans.
    @property
    def level(self) -> str:
        return self._level

    @level.setter
    def level(self, value: str) -> None:
        if value not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {value!r}")
        self._level = value
        self._keep_trivial = value == "full"
        self._keep_any = value != "off"
        watched = bool(self._watchers)
        self.full = self._keep_trivial or watched    # make (and pass on) trivial decisions too
        self.enabled = self._keep_any or watched      # make impairment decisions

    def add_watcher(self, fn) -> None:
        """``fn(entry)`` for every decision from now on, trivial ones included (the entry
        dict is the one the log keeps; do not change it)."""
        self._watchers.append(fn)
        self.level = self._level

    def remove_watcher(self, fn) -> None:
        self._watchers.remove(fn)
        self.level = self._level

    def next_id(self) -> int:
        """A new frame id, unique among all frames using this log."""
        self._next_id += 1
        return self._next_id

    @property
    def last_id(self) -> int:
        """The id handed out most recently (0 before the first): ``last_id + 1`` is the id the
        next frame put on a medium will get, so a caller can log about it beforehand."""
        return self._next_id

    def register_medium(self, name: str, kind: str) -> None:
        """Remember what kind of medium ``name`` is ("link", "hub", "switch") for why()."""
        self._media[name] = kind

    def record(self, t: int, frame: int, medium: str, event: str, **fields: Any) -> None:
        if not self.enabled or (not self.full and event in TRIVIAL):
            return
        entry = {"t": t, "frame": frame, "medium": medium, "event": event}
        entry.update(fields)
        if self._watchers:
            for fn in self._watchers:
                fn(entry)
            if not self._keep_any or (not self._keep_trivial and event in TRIVIAL):
                return
        if len(self.entries) == self.max_entries:
            self.forgotten += 1  # deque(maxlen) drops the oldest on append
        self.entries.append(entry)

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries)

    def frame(self, fid: int) -> list[dict[str, Any]]:
        """Entries about frame ``fid``, oldest first (a duplicate's creation is listed under
        both the copy and its parent)."""
        return [e for e in self.entries if e["frame"] == fid or e.get("parent") == fid]

    def filter(self, event: str | None = None, **eq: Any) -> list[dict[str, Any]]:
        """Entries with the given event and field values, e.g. ``filter(event="collision")``."""
        out = []
        for e in self.entries:
            if event is not None and e["event"] != event:
                continue
            if all(e.get(k) == v for k, v in eq.items()):
                out.append(e)
        return out

    def to_jsonl(self, path_or_file) -> None:
        """One JSON object per line, keys sorted: byte-identical for identical runs."""
        write_jsonl(self.entries, path_or_file)

    def why(self, fid: int) -> str:
        """A human account of frame ``fid``: where it was sent, what happened, how it ended."""
        entries = self.frame(fid)
        if not entries:
            return (f"frame {fid}: no decisions recorded (log level {self.level!r}"
                    + (", or forgotten: the log is bounded" if self.forgotten else "")
                    + "; level 'impairments' records nothing for a frame that was not impaired)")
        first = entries[0]
        sender = next((e for e in entries if e["event"] == "sent" and e["frame"] == fid), None)
        if sender is None:
            sender = next((e for e in entries if e["frame"] == fid and "src" in e), first)
        medium = sender["medium"]
        kind = self._media.get(medium, "medium")
        if "src" in sender:
            head = (f"frame {fid}: sent by {sender['src']} at "
                    f"{fmt_time(sender.get('sent_at', sender['t']))} on {kind} {medium}")
        else:  # only the receiving side's decision survived (e.g. an FCS drop)
            head = f"frame {fid}: on {kind} {medium}"
        parts = []
        for e in entries:
            if e is sender and e["event"] == "sent":
                continue
            parts.append(self._describe(e, fid))
        if not any(e["event"] in TERMINAL or e["event"] == "delivered"
                   or (e["event"] == "fault" and e.get("action") == "drop")
                   for e in entries if e["frame"] == fid):
            if any(e["event"] == "collision" for e in entries):
                pass  # the collision/backoff lines already say how it went
            elif not self._keep_trivial:
                parts.append("no loss recorded (level 'impairments' does not record deliveries)")
        return head + ("; " + "; ".join(parts) if parts else "")

    @staticmethod
    def _describe(e: dict[str, Any], fid: int) -> str:
        ev = e["event"]
        at = fmt_time(e["t"])
        if ev == "sent":
            return f"sent again by {e.get('src', '?')} at {at}"
        if ev == "queued":
            return f"queued behind {e['depth']} frame(s)"
        if ev == "queue_overflow":
            return f"dropped: transmit queue full ({e['depth']}/{e['limit']} frames) at {at}"
        if ev == "dropped_loss":
            model = {"independent": "independent loss",
                     "gilbert-bad": "Gilbert-Elliott loss in the bad state",
                     "gilbert-good": "Gilbert-Elliott loss in the good state"}.get(e["model"], e["model"])
            return f"dropped: {model} (p={e['p']:g})"
        if ev == "corrupted":
            return f"corrupted: bit(s) {e['bits']} flipped"
        if ev == "duplicated":
            if e["frame"] == fid:
                return f"created as a duplicate of frame {e['parent']}"
            return f"duplicated as frame {e['frame']}"
        if ev == "reordered":
            return f"held back {_fmt_dur(e['extra'])} so later frames overtake it"
        if ev == "truncated":
            return f"truncated from {e['old']} to {e['new']} bytes"
        if ev == "delayed":
            return (f"in flight {_fmt_dur(e['total'])} (serialization {_fmt_dur(e['serialization'])},"
                    f" propagation {_fmt_dur(e['propagation'])}, jitter {_fmt_dur(e['jitter'])}"
                    + (f", held back {_fmt_dur(e['hold'])}" if e.get("hold") else "") + ")")
        if ev == "collision":
            return f"collided with frame(s) {e.get('with', [])} at {at}: garbled"
        if ev == "backoff":
            return f"backoff after collision #{e['attempt']}: waits {e['slots']} slot(s)"
        if ev == "excessive_collisions":
            return f"dropped: {e['attempts']} collisions, sender {e.get('src', '?')} gave up at {at}"
        if ev == "link_down":
            return f"dropped: link down at {at}"
        if ev == "mtu_exceeded":
            return f"dropped: payload {e['size']} bytes > MTU {e['mtu']}"
        if ev == "fault":
            if e["action"] == "drop":
                return f"dropped: scripted fault {e['fault']}"
            return f"scripted fault {e['fault']} ({e['action']})"
        if ev == "delivered":
            return f"delivered to {e['to']} at {at}"
        if ev == "forwarded":
            return f"switch forwarded it out port {e['port']} ({'flooded' if e.get('flood') else 'learned'}) at {at}"
        if ev == "filtered":
            return f"switch filtered it (destination is on the ingress port) at {at}"
        if ev == "fcs_drop":
            return f"dropped by {e['by']}: FCS (CRC-32) mismatch at {at}"
        if ev == "runt":
            return f"dropped by {e['by']}: runt ({e['size']} bytes) at {at}"
        if ev == "not_for_us":
            return f"ignored by {e['by']}: not addressed to it"
        if ev == "nic_down":
            return f"dropped: NIC {e['by']} is down"
        if ev == "deferred":
            return f"deferred (carrier sensed) until {fmt_time(e['until'])}"
        extra = {k: v for k, v in e.items() if k not in ("t", "frame", "medium", "event")}
        return f"{ev} {extra} at {at}"
