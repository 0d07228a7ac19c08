"""The wire's decisions about one frame, in words short enough for a packet comment or a
ladder label: "lost: loss p=0.10", "bits 113 and 802 flipped, FCS bad", "duplicate of #41",
"delayed +12.3 ms", "collision, attempt 2".

Input: the decision-log entries (plain dicts ``{"t", "frame", "medium", "event", ...}``, see
``wirestack.sim.decisions``) about the frame. Trivial decisions (sent, delivered, ...) say
nothing unusual and are left out.
"""

from __future__ import annotations

from typing import Any, Iterable

TRIVIAL = frozenset({"sent", "queued", "delayed", "delivered", "forwarded", "not_for_us",
                     "deferred", "filtered"})

# Decisions after which this copy of the frame no longer exists, and where (the medium or
# a receiving NIC) it ended.
LOST = frozenset({"queue_overflow", "dropped_loss", "excessive_collisions", "link_down",
                  "mtu_exceeded", "nic_down", "no_carrier"})
DROPPED_AT_NIC = frozenset({"fcs_drop", "runt"})


def ms(ns: int) -> str:
    """12_300_000 -> "12.3 ms"."""
    return f"{ns / 1e6:.4g} ms"


def bits_phrase(bits: list[int]) -> str:
    if len(bits) == 1:
        return f"bit {bits[0]}"
    return "bits " + ", ".join(str(b) for b in bits[:-1]) + f" and {bits[-1]}"


def describe(e: dict[str, Any], fid: int) -> str | None:
    """One decision in words, or None for a trivial one."""
    ev = e["event"]
    if ev in TRIVIAL:
        return None
    if ev == "dropped_loss":
        if e["model"] == "independent":
            return f"lost: loss p={e['p']:.2f}"
        state = "bad" if e["model"] == "gilbert-bad" else "good"
        return f"lost: burst loss (Gilbert-Elliott, {state} state) p={e['p']:.2f}"
    if ev == "queue_overflow":
        return f"lost: queue full ({e['depth']}/{e['limit']} frames waiting)"
    if ev == "corrupted":
        return f"{bits_phrase(e['bits'])} flipped, FCS bad"
    if ev == "fault":
        act = e["action"]
        name = e.get("fault", "")
        if act == "drop":
            return f"lost: scripted fault {name}"
        if act == "corrupt":
            return f"{bits_phrase(e['bits'])} flipped by scripted fault {name}, FCS bad"
        if act == "delay":
            return f"delayed +{ms(e['extra'])} (scripted fault {name})"
        if act == "truncate":
            return f"truncated {e['old']} -> {e['new']} bytes (scripted fault {name})"
        return f"duplicated (scripted fault {name})"
    if ev == "duplicated":
        if e["frame"] == fid:
            return f"duplicate of #{e['parent']}"
        return f"duplicated as #{e['frame']}"
    if ev == "reordered":
        return f"delayed +{ms(e['extra'])} (later frames overtake it)"
    if ev == "truncated":
        return f"truncated {e['old']} -> {e['new']} bytes"
    if ev == "collision":
        return f"collision, attempt {e['attempt']}"
    if ev == "backoff":
        return f"backoff {e['slots']} slot(s)"
    if ev == "excessive_collisions":
        return f"lost: {e['attempts']} collisions, sender gave up"
    if ev == "link_down":
        return "lost: link down" + (" while in flight" if e.get("in_flight") else "")
    if ev == "mtu_exceeded":
        return f"lost: {e['size']} bytes > MTU {e['mtu']}"
    if ev == "fcs_drop":
        return f"dropped by {e['by']}: FCS bad"
    if ev == "runt":
        return f"dropped by {e['by']}: runt ({e['size']} bytes)"
    if ev == "nic_down":
        return f"lost: NIC {e['by']} is down"
    extra = {k: v for k, v in e.items() if k not in ("t", "frame", "medium", "event")}
    return f"{ev} {extra}"


def summary(entries: Iterable[dict[str, Any]], fid: int) -> str:
    """Every non-trivial decision about frame ``fid``, joined with "; " ("" if none)."""
    parts = []
    attempts: list[int] = []
    slots: list[int] = []
    for e in entries:
        if e["event"] == "collision" and e["frame"] == fid:
            attempts.append(e["attempt"])
            if len(attempts) > 1:
                continue          # a hub's retries are told in one phrase, below
        elif e["event"] == "backoff" and e["frame"] == fid:
            slots.append(e["slots"])
            continue
        text = describe(e, fid)
        if text and text not in parts:
            parts.append(text)
    if len(attempts) > 1:
        i = parts.index(f"collision, attempt {attempts[0]}")
        parts[i] = (f"{len(attempts)} collisions (attempts {attempts[0]}-{attempts[-1]}), backoff "
                    + ", ".join(str(n) for n in slots) + " slot times")
    elif slots:
        parts.append(f"backoff {slots[0]} slot times")
    return "; ".join(parts)


def is_lost(entries: Iterable[dict[str, Any]], fid: int) -> bool:
    """Did the wire itself destroy frame ``fid`` (not a receiving NIC)?"""
    for e in entries:
        if e["frame"] != fid:
            continue
        if e["event"] in LOST or (e["event"] == "fault" and e.get("action") == "drop"):
            return True
    return False
