"""Ladder (sequence) diagrams of a run, as text for the terminal and as SVG.

One lane per host; one arrow per frame from its sender to its receiver, labelled the way
Wireshark's flow graph labels it (flags, relative Seq/Ack, Win, Len) and numbered with the
frame's decision-log id (#17). A frame the wire lost stops half-way with an ``X`` and the
reason; a damaged frame reaches its receiver and is crossed out where it was dropped (NIC:
FCS, or IP/TCP/UDP: checksum). TCP state changes, RTO firings, retransmissions and cwnd
cuts are annotated on the lane of the host they happened in.

Input: the dict of :meth:`wirestack.trace.record.RunRecorder.data`.
"""

from __future__ import annotations

from html import escape

from ..units import SEC

# Host events worth a line on the ladder (the others are in the viewer's panel).
ANNOTATED = {"state", "rto", "retransmit", "arp_failed", "keepalive", "persist_probe", "error"}


def annotated(e: dict) -> bool:
    if e["kind"] == "cwnd":
        return "(ack)" not in e["text"]      # cuts and recovery, not every slow-start step
    return e["kind"] in ANNOTATED


def rows(data: dict) -> list[tuple[int, str, dict]]:
    """Frames and annotated events in time order: (t, "frame"|"event", item)."""
    out = [(f["t"], 0, "frame", f) for f in data["frames"]]
    out += [(e["t"], 1, "event", e) for e in data["events"] if annotated(e)]
    out.sort(key=lambda r: (r[0], r[1]))
    return [(t, kind, item) for t, _, kind, item in out]


def fate_note(f: dict) -> str:
    if f["fate"] == "lost":
        return f["reason"]
    if f["fate"] == "dropped":
        if f["where"] == "NIC":
            return f["reason"]
        return f"dropped by {f['dst']}'s {f['where']}: checksum wrong" + (f" ({f['reason']})" if f["reason"] else "")
    return f["reason"]


def _targets(f: dict, hosts: list[str]) -> list[str]:
    if f["dst"] == "*" or f["dst"] not in hosts:
        return [h for h in hosts if h != f["src"]]
    return [f["dst"]]


# ------------------------------------------------------------------------------------------
# text
# ------------------------------------------------------------------------------------------

def text_ladder(data: dict, gap: int = 76) -> str:
    hosts = data["hosts"]
    x = {h: i * gap for i, h in enumerate(hosts)}
    width = (len(hosts) - 1) * gap + 1
    # Two hosts on one medium: the medium gets a lane of its own, where lost frames stop.
    wire_x = gap // 2 if len(hosts) == 2 and len(data["media"]) == 1 else None
    head = list("".join(h.ljust(gap) for h in hosts).rstrip().ljust(width))
    if wire_x is not None:
        name = f"wire {data['media'][0]}"
        start = max(1, wire_x - len(name) // 2)
        head[start:start + len(name)] = list(name)
    lines = [f"ladder: {data['title']}  (#N = the wire's frame number; X = lost or dropped)", "",
             "    time (s)  " + "".join(head).rstrip(), ""]
    for t, kind, item in rows(data):
        canvas = [" "] * width
        for h in hosts:
            canvas[x[h]] = "|"
        if wire_x is not None:
            canvas[wire_x] = ":"
        note = ""
        if kind == "frame":
            f = item
            if f["src"] not in x:
                continue
            targets = _targets(f, hosts)
            xs = x[f["src"]]
            xd = [x[h] for h in targets]
            lo, hi = min(xd + [xs]), max(xd + [xs])
            right = max(xd) > xs
            if f["fate"] == "lost":
                end = xs + (max(xd) - xs) // 2 if right else xs - (xs - min(xd)) // 2
                lo, hi = (xs, end) if right else (end, xs)
            for i in range(lo + 1, hi):
                canvas[i] = "-"
            label = f" #{f['id']} {f['label']} "
            if f["fate"] == "lost":
                label = f" #{f['id']} "
            span = hi - lo - 3
            if len(label) > span:
                label = label[:max(span - 1, 0)] + "… "
            start = lo + 2 + max(0, (span - len(label)) // 2)
            for i, ch in enumerate(label):
                if start + i < hi:
                    canvas[start + i] = ch
            if f["fate"] == "lost":
                canvas[hi if right else lo] = "X"
            elif f["fate"] == "dropped":
                canvas[hi - 1 if right else lo + 1] = "X"
            else:
                if right:
                    canvas[hi - 1] = ">"
                else:
                    canvas[lo + 1] = "<"
            note = fate_note(f)
            if f["fate"] == "lost":
                note = f"LOST #{f['id']} {f['label']}: {note}"
            if f["dst"] == "*":
                note = ("broadcast; " + note) if note else "broadcast"
        else:
            e = item
            if e["host"] not in x:
                continue
            text = f"* {e['host']}: {e['text']}"
            xh = x[e["host"]]
            if wire_x is not None and xh == 0 and len(text) > wire_x - 3:
                pos = xh + 2      # may run over the wire's lane: events are about a host
            elif xh + 2 + len(text) <= width or xh == 0:
                pos = xh + 2
            else:
                pos = max(0, xh - 1 - len(text))
            for i, ch in enumerate(text):
                if pos + i < width and canvas[pos + i] not in "|":
                    canvas[pos + i] = ch
                elif pos + i >= width:
                    note = text[i:]
                    break
        line = f"{t / SEC:12.6f}  " + "".join(canvas).rstrip()
        if note:
            line += ("  " if len(line) >= 14 + width else " " * (14 + width - len(line) + 2)) + note
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# SVG
# ------------------------------------------------------------------------------------------

ROW = 22
LANE_GAP = 420
LEFT = 110
TOP = 60
COLORS = {"delivered": "#1f5fbf", "lost": "#c62828", "dropped": "#e65100"}


class _TimeToY:
    """Rows are evenly spaced (one per frame or event, like Wireshark's flow graph); a time
    between two rows maps linearly between them, so an arrow's slope shows its flight time
    against what else happened meanwhile."""

    def __init__(self, times: list[int]):
        self.times = times

    def __call__(self, t: int) -> float:
        ts = self.times
        if not ts:
            return TOP
        import bisect
        i = bisect.bisect_right(ts, t) - 1
        if i < 0:
            return TOP
        if i >= len(ts) - 1:
            return TOP + (len(ts) - 1) * ROW + (ROW if t > ts[-1] else 0)
        t0, t1 = ts[i], ts[i + 1]
        frac = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return TOP + (i + frac) * ROW


def svg_ladder(data: dict, interactive: bool = False) -> str:
    """The ladder as an SVG document (``interactive``: frame groups carry ``data-id`` and
    a class the run viewer hooks clicks on)."""
    hosts = data["hosts"]
    items = rows(data)
    times = [t for t, _, _ in items]
    y = _TimeToY(times)
    x = {h: LEFT + 60 + i * LANE_GAP for i, h in enumerate(hosts)}
    width = LEFT + 60 + (len(hosts) - 1) * LANE_GAP + 330
    height = TOP + len(items) * ROW + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
           'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/>'
           '</marker></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(data["title"])}: ladder diagram</text>',
           f'<text x="10" y="{TOP - 12}" fill="#555">time (s)</text>']
    if len(hosts) == 2 and len(data["media"]) == 1:
        xm = (x[hosts[0]] + x[hosts[1]]) / 2
        out.append(f'<line x1="{xm}" y1="{TOP - 8}" x2="{xm}" y2="{height - 20}" stroke="#bbb" '
                   f'stroke-dasharray="2,4"/>')
        out.append(f'<text x="{xm}" y="{TOP - 20}" text-anchor="middle" fill="#777">'
                   f'wire {escape(data["media"][0])}</text>')
    for h in hosts:
        out.append(f'<line x1="{x[h]}" y1="{TOP - 8}" x2="{x[h]}" y2="{height - 20}" stroke="#888" stroke-width="2"/>')
        out.append(f'<text x="{x[h]}" y="{TOP - 20}" text-anchor="middle" font-size="13" font-weight="bold">'
                   f'host {escape(h)}</text>')
    for i, (t, kind, item) in enumerate(items):
        row_y = TOP + i * ROW
        if kind == "event":
            e = item
            if e["host"] not in x:
                continue
            color = "#6a1b9a" if e["kind"] in ("state",) else "#b71c1c" if e["kind"] in ("rto", "retransmit") else "#2e7d32"
            xh = x[e["host"]]
            anchor, dx = "start", 8     # right of the lane: the time column is on the left
            out.append(f'<g class="event" data-host="{escape(e["host"])}"><circle cx="{xh}" cy="{row_y}" r="4" fill="{color}"/>'
                       f'<text x="{xh + dx}" y="{row_y + 4}" text-anchor="{anchor}" fill="{color}">'
                       f'{escape(e["text"])}</text></g>')
            out.append(f'<text x="10" y="{row_y + 4}" fill="#777">{t / SEC:.6f}</text>')
            continue
        f = item
        if f["src"] not in x:
            continue
        out.append(f'<text x="10" y="{row_y + 4}" fill="#777">{f["t"] / SEC:.6f}</text>')
        color = COLORS.get(f["fate"], "#1f5fbf")
        xs = x[f["src"]]
        attrs = f' class="frame" data-id="{f["id"]}"' if interactive else ""
        parts = [f'<g{attrs} style="cursor:pointer"><title>#{f["id"]} {escape(f["summary"])}</title>']
        for h in _targets(f, hosts):
            xd = x[h]
            arr = next((a for a in f["arrivals"] if a["host"] == h), None)
            y1 = row_y
            if f["fate"] == "lost" or arr is None:
                xm = (xs + xd) / 2
                ym = y1 + ROW * 0.6
                parts.append(f'<line x1="{xs}" y1="{y1}" x2="{xm}" y2="{ym}" stroke="{color}" stroke-width="1.6" '
                             f'stroke-dasharray="5,3"/>')
                parts.append(f'<text x="{xm}" y="{ym + 5}" text-anchor="middle" fill="{color}" font-size="15" '
                             f'font-weight="bold">✕</text>')
                continue
            y2 = max(y(arr["t"]), y1 + 4)
            marker = "" if f["fate"] == "dropped" else ' marker-end="url(#arrow)"'
            parts.append(f'<line x1="{xs}" y1="{y1}" x2="{xd}" y2="{y2}" stroke="{color}" stroke-width="1.4"{marker}/>')
            if f["fate"] == "dropped":
                parts.append(f'<text x="{xd}" y="{y2 + 5}" text-anchor="middle" fill="{color}" font-size="15" '
                             f'font-weight="bold">✕</text>')
        targets = _targets(f, hosts)
        xd0 = x[targets[0]] if targets else xs + LANE_GAP
        lx = (xs + xd0) / 2
        parts.append(f'<text x="{lx}" y="{row_y - 3}" text-anchor="middle" fill="{color}">'
                     f'#{f["id"]} {escape(f["label"])}</text>')
        note = fate_note(f)
        if note:
            nx = max(x.values()) + 14
            parts.append(f'<text x="{nx}" y="{row_y + 8}" fill="{color}">{escape(note)}</text>')
        parts.append("</g>")
        out.append("".join(parts))
    # A legend, so the colours and crosses need no guessing.
    ly = height - 10
    out.append(f'<text x="10" y="{ly}" fill="#1f5fbf">→ delivered</text>'
               f'<text x="110" y="{ly}" fill="#c62828">- - ✕ lost on the wire</text>'
               f'<text x="270" y="{ly}" fill="#e65100">→✕ dropped by the receiver (NIC FCS / checksum)</text>'
               f'<text x="590" y="{ly}" fill="#6a1b9a">● TCP state</text>'
               f'<text x="680" y="{ly}" fill="#b71c1c">● RTO / retransmission</text>'
               f'<text x="840" y="{ly}" fill="#2e7d32">● cwnd change</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
