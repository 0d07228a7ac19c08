"""The run viewer: one self-contained HTML file (inline CSS, JavaScript and data; it loads
nothing from the network) that shows a run the way a teacher would draw it.

* the ladder diagram (click an arrow to select that frame);
* for the selected frame: its decoded headers, what the wire decided about it, and what
  each layer of the receiving host did with it; step forward/back with the buttons or the
  arrow keys;
* on one shared, zoomable time axis (mouse wheel to zoom, drag to pan): the time-sequence
  graph (segments, retransmissions, ACK line, receive-window edge, SACK blocks),
  cwnd/ssthresh, RTT samples with SRTT and the RTO (including its backoff), and the
  bottleneck queue occupancy.

Several runs (a what-if comparison, the runs of a lab) are tabs of one page.
Input: dicts of :meth:`wirestack.trace.record.RunRecorder.data`.
"""

from __future__ import annotations

import json
from html import escape

from .ladder import svg_ladder

# Frame fields the page needs (the rest of the record stays out of the file).
_FIELDS = ("id", "t", "t_end", "src", "dst", "len", "proto", "label", "summary", "headers", "fate",
           "where", "reason", "arrivals", "dup_of", "medium")


# A browser stays responsive with a few thousand arrows; longer runs show the first ones in
# the ladder and the details panel (the graphs always show the whole run).
MAX_FRAMES = 4000


def _cut(data: dict) -> dict:
    if len(data["frames"]) <= MAX_FRAMES:
        return data
    frames = data["frames"][:MAX_FRAMES]
    end = frames[-1]["t"]
    return dict(data, frames=frames, events=[e for e in data["events"] if e["t"] <= end])


def _slim(data: dict) -> dict:
    total = sum(1 for f in data["frames"] if "dup_of" not in f)
    data = _cut(data)
    frames = [{k: f[k] for k in _FIELDS if k in f} for f in data["frames"]]
    for f in frames:
        for h in f.get("headers", {}).values():
            if isinstance(h, dict):
                for k in ("seq_abs", "ack_abs", "sack_abs"):
                    h.pop(k, None)
    return {"title": data["title"], "hosts": data["hosts"], "media": data["media"], "frames": frames,
            "events": data["events"], "series": data["series"], "end": data["end"],
            "summary": data.get("summary", {}), "total": total}


def render(runs: list[dict], title: str = "wirestack run") -> str:
    """The HTML page for ``runs`` (each a RunRecorder.data() dict, optionally with a
    "summary" dict of figures shown above the ladder)."""
    slim = [_slim(r) for r in runs]
    payload = json.dumps(slim, separators=(",", ":"), sort_keys=True)
    payload = payload.replace("</", "<\\/")
    ladders = "\n".join(
        f'<div class="ladder-wrap" data-run="{i}" style="display:{"block" if i == 0 else "none"}">'
        f'{svg_ladder(_cut(r), interactive=True)}</div>' for i, r in enumerate(runs))
    tabs = "".join(f'<button class="tab{" active" if i == 0 else ""}" data-run="{i}">{escape(r["title"])}</button>'
                   for i, r in enumerate(runs))
    compare = ('<label style="margin-left:12px"><input type="checkbox" id="compare"> both ladders side by side'
               '</label>' if len(runs) == 2 else "")
    return (_PAGE.replace("%TITLE%", escape(title)).replace("%TABS%", tabs).replace("%COMPARE%", compare)
            .replace("%LADDERS%", ladders).replace("%DATA%", payload))


def write(path: str, runs: list[dict], title: str = "wirestack run") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(runs, title))


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>%TITLE%</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:8px 16px;background:#263238;color:#fff}
header h1{font-size:18px;margin:0 0 4px 0}
header p{margin:0;font-size:13px;color:#cfd8dc}
.tabs{padding:6px 16px;background:#eceff1}
.tab{border:1px solid #90a4ae;background:#fff;padding:4px 10px;margin-right:4px;cursor:pointer;border-radius:4px}
.tab.active{background:#1565c0;color:#fff}
#ladder.compare{display:flex;gap:6px}
#ladder.compare .ladder-wrap{display:block !important;flex:1;overflow:auto;border-right:2px solid #90a4ae}
#summary{padding:4px 16px;font-size:13px}
#main{display:flex;gap:8px;padding:0 8px}
#left{flex:3;min-width:0}
#ladder{height:460px;overflow:auto;border:1px solid #ccc;background:#fff}
#detail{flex:2;min-width:320px;max-height:520px;overflow:auto;border:1px solid #ccc;background:#fff;padding:8px;font-size:13px}
#detail h2{font-size:15px;margin:4px 0}
#detail h3{font-size:13px;margin:10px 0 2px 0;color:#37474f}
#detail table{border-collapse:collapse;font-size:12px}
#detail td{border-bottom:1px solid #eee;padding:1px 6px;vertical-align:top}
.fate-lost{color:#c62828;font-weight:bold}.fate-dropped{color:#e65100;font-weight:bold}.fate-delivered{color:#1f5fbf}
.layer{font-weight:bold;display:inline-block;min-width:60px}
g.frame.selected line{stroke-width:4}
g.frame.selected text{font-weight:bold}
.controls{margin:6px 0}
.controls button{padding:3px 10px;margin-right:4px}
#charts{padding:8px}
.chart{background:#fff;border:1px solid #ccc;margin-bottom:6px}
.chart text{font-size:11px;font-family:system-ui,sans-serif}
.legend{font-size:12px}
.help{font-size:12px;color:#555}
</style></head>
<body>
<header><h1>%TITLE%</h1>
<p>Each arrow is one Ethernet frame. Click an arrow (or use ◀ ▶ / the arrow keys) to see what it carried, what the wire did to it, and what the receiving host did with it.</p></header>
<div class="tabs">%TABS%%COMPARE%</div>
<div id="summary"></div>
<div id="main">
 <div id="left"><div id="ladder">%LADDERS%</div></div>
 <div id="detail"><div class="controls"><button id="prev">◀ previous frame</button><button id="next">next frame ▶</button>
 <span id="position"></span></div><div id="frame-info"><p class="help">No frame selected yet.</p></div></div>
</div>
<div id="charts">
 <div class="controls"><b>Time axis</b> (shared by all graphs): <button id="zoom-in">zoom in</button><button id="zoom-out">zoom out</button><button id="zoom-reset">whole run</button>
 <span class="help">Mouse wheel over a graph zooms around the pointer; drag to move along the time axis. The grey vertical line is the selected frame.</span></div>
 <div id="chart-tseq"></div><div id="chart-cwnd"></div><div id="chart-rtt"></div><div id="chart-queue"></div>
</div>
<script id="run-data" type="application/json">%DATA%</script>
<script>
"use strict";
const RUNS = JSON.parse(document.getElementById("run-data").textContent);
let run = 0, sel = null, xdom = null, drag = null;
window.addEventListener("mouseup", () => { drag = null; });
const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c])); }
function secs(ns) { return (ns / 1e9).toFixed(6) + " s"; }
function R() { return RUNS[run]; }
function wireFrames() { return R().frames.filter(f => f.dup_of === undefined); }

function showSummary() {
  const r = R(), s = r.summary || {};
  const lost = r.frames.filter(f => f.fate === "lost").length, dropped = r.frames.filter(f => f.fate === "dropped").length;
  let html = `<b>${esc(r.title)}</b>: <span id="frame-count">${r.total}</span> frames on the wire` +
    (r.total > wireFrames().length ? ` (the ladder and details show the first ${wireFrames().length})` : "") +
    ` (${lost} lost on the wire, ${dropped} dropped by a receiver), hosts ${r.hosts.map(esc).join(", ")}`;
  for (const k in s) html += ` · ${esc(k)}: <b>${esc(s[k])}</b>`;
  document.getElementById("summary").innerHTML = html;
}

function headerTable(h) {
  let out = "";
  for (const layer in h) {
    const fields = h[layer];
    if (typeof fields !== "object") { out += `<tr><td>${esc(layer)}</td><td>${esc(fields)}</td></tr>`; continue; }
    out += `<tr><td><b>${esc(layer)}</b></td><td>` +
      Object.entries(fields).map(([k, v]) => `${esc(k)}=${esc(Array.isArray(v) ? JSON.stringify(v) : v)}`).join(", ") + "</td></tr>";
  }
  return `<table>${out}</table>`;
}

function wireWords(f) {
  if (f.fate === "lost") return `<span class="fate-lost">Lost on the wire: ${esc(f.reason.replace(/^lost: /, ""))}</span>. It never reached ${esc(f.dst === "*" ? "anyone" : f.dst)}.`;
  if (f.fate === "dropped") return `<span class="fate-dropped">Damaged on the wire: ${esc(f.reason)}</span>. Dropped by the receiver's ${esc(f.where)}.`;
  const arr = f.arrivals.map(a => `${esc(a.host)} at ${secs(a.t)} (${((a.t - f.t) / 1e6).toFixed(3)} ms after it was sent)`);
  return `<span class="fate-delivered">Delivered</span> to ${arr.join(", ") || "nobody"}` + (f.reason ? `; the wire: ${esc(f.reason)}` : "") + ".";
}

function select(id, scroll) {
  const frames = R().frames;
  const i = frames.findIndex(f => f.id === id);
  if (i < 0) return;
  sel = id;
  const f = frames[i];
  document.querySelectorAll("g.frame.selected").forEach(g => g.classList.remove("selected"));
  const g = document.querySelector(`.ladder-wrap[data-run="${run}"] g.frame[data-id="${id}"]`);
  if (g) { g.classList.add("selected"); if (scroll) g.scrollIntoView({block: "center", inline: "nearest"}); }
  let layers = "";
  for (const a of f.arrivals) {
    layers += `<h3>What host ${esc(a.host)} did with it (${secs(a.t)})</h3>`;
    layers += (a.layers || []).map(l => `<div><span class="layer">${esc(l.layer)}</span> ${esc(l.text)}</div>`).join("") ||
      "<div>(not recorded)</div>";
  }
  if (!f.arrivals.length) layers = "<h3>Receiving host</h3><div>Nothing: the frame did not arrive.</div>";
  document.getElementById("frame-info").innerHTML =
    `<h2 id="frame-title">Frame #${f.id}: ${esc(f.src)} → ${esc(f.dst === "*" ? "everyone (broadcast)" : f.dst)}</h2>` +
    `<div>${esc(f.label)}</div><div class="help">${esc(f.summary)}</div>` +
    `<div>sent at ${secs(f.t)} on ${esc(f.medium)}, ${f.len} bytes` + (f.dup_of !== undefined ? `, a copy of #${f.dup_of} made by the wire` : "") + `</div>` +
    `<h3>What the wire did</h3><div id="wire-decision">${wireWords(f)}</div>` +
    `<h3>Headers</h3>${headerTable(f.headers)}${layers}`;
  document.getElementById("position").textContent = `frame ${i + 1} of ${frames.length}`;
  drawCharts();
}
function step(d) {
  const frames = R().frames;
  let i = frames.findIndex(f => f.id === sel);
  i = i < 0 ? 0 : Math.min(frames.length - 1, Math.max(0, i + d));
  if (frames.length) select(frames[i].id, true);
}

// ---------------------------------------------------------------- charts (shared time axis)
const W = 1000, H = 190, ML = 80, MR = 170, MT = 24, MB = 34;
function fullDomain() {
  // The whole run: from the first frame to the last arrival (zoom in from there).
  const r = R();
  let lo = Infinity, hi = 0;
  for (const f of r.frames) { lo = Math.min(lo, f.t); hi = Math.max(hi, f.t_end); }
  for (const p of r.series.segments.concat(r.series.acks)) { lo = Math.min(lo, p[0]); hi = Math.max(hi, p[0]); }
  if (lo === Infinity) { lo = 0; hi = Math.max(r.end, 1); }
  const pad = (hi - lo) * 0.03 + 1e6;
  return [Math.max(0, lo - pad), hi + pad];
}
function chart(id, title, ylabel, series, yfmt) {
  const box = document.getElementById(id);
  box.innerHTML = "";
  const svg = el("svg", {class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`}, box);
  const [x0, x1] = xdom;
  let ymax = 0;
  for (const s of series) for (const p of s.data) if (p[0] >= x0 && p[0] <= x1) ymax = Math.max(ymax, s.y2 ? p[s.y2] : p[1]);
  ymax = ymax > 0 ? ymax * 1.08 : 1;
  const X = t => ML + (t - x0) / (x1 - x0) * (W - ML - MR);
  const Y = v => H - MB - v / ymax * (H - MT - MB);
  el("text", {x: ML, y: 15, "font-weight": "bold"}, svg, title);
  el("text", {x: 14, y: (H - MB + MT) / 2, transform: `rotate(-90 14 ${(H - MB + MT) / 2})`, "text-anchor": "middle"}, svg, ylabel);
  el("text", {x: (W - MR + ML) / 2, y: H - 4, "text-anchor": "middle"}, svg, "time (s)");
  for (let k = 0; k <= 4; k++) {
    const v = ymax * k / 4, y = Y(v);
    el("line", {x1: ML, x2: W - MR, y1: y, y2: y, stroke: "#eee"}, svg);
    el("text", {x: ML - 4, y: y + 4, "text-anchor": "end"}, svg, yfmt ? yfmt(v) : Math.round(v));
  }
  for (let k = 0; k <= 6; k++) {
    const t = x0 + (x1 - x0) * k / 6, x = X(t);
    el("line", {x1: x, x2: x, y1: MT, y2: H - MB, stroke: "#f2f2f2"}, svg);
    el("text", {x: x, y: H - MB + 14, "text-anchor": "middle"}, svg, (t / 1e9).toFixed(3));
  }
  el("line", {x1: ML, x2: ML, y1: MT, y2: H - MB, stroke: "#444"}, svg);
  el("line", {x1: ML, x2: W - MR, y1: H - MB, y2: H - MB, stroke: "#444"}, svg);
  const clip = "clip-" + id;
  el("rect", {x: ML, y: MT - 2, width: W - ML - MR, height: H - MT - MB + 2}, el("clipPath", {id: clip}, el("defs", {}, svg)));
  const plot = el("g", {"clip-path": `url(#${clip})`}, svg);
  let ly = MT + 6;
  for (const s of series) {
    const pts = s.data;
    if (s.kind === "step" || s.kind === "line") {
      let d = "";
      pts.forEach((p, i) => {
        const x = X(p[0]), y = Y(p[1]);
        if (i === 0) d += `M${x},${y}`;
        else d += s.kind === "step" ? `H${x}V${y}` : `L${x},${y}`;
      });
      if (s.kind === "step" && pts.length) d += `H${X(Math.max(x1, pts[pts.length - 1][0]))}`;
      el("path", {d: d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.5, "stroke-dasharray": s.dash || ""}, plot);
    } else if (s.kind === "bars") {
      for (const p of pts) {
        if (p[0] < x0 || p[0] > x1) continue;
        const l = el("line", {x1: X(p[0]), x2: X(p[0]), y1: Y(p[1]), y2: Math.min(Y(p[2]), Y(p[1]) - 2), stroke: s.colorOf ? s.colorOf(p) : s.color,
          "stroke-width": s.width || 2}, plot);
        if (p[4] !== undefined) { l.setAttribute("data-id", p[4]); l.style.cursor = "pointer"; l.addEventListener("click", () => select(p[4], true)); }
      }
    } else {
      for (const p of pts) if (p[0] >= x0 && p[0] <= x1) el("circle", {cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.color}, plot);
    }
    el("line", {x1: W - MR + 10, x2: W - MR + 30, y1: ly, y2: ly, stroke: s.color, "stroke-width": 3, "stroke-dasharray": s.dash || ""}, svg);
    el("text", {x: W - MR + 34, y: ly + 4, class: "legend"}, svg, s.name);
    ly += 16;
  }
  if (sel !== null) {
    const f = R().frames.find(f => f.id === sel);
    if (f && f.t >= x0 && f.t <= x1) el("line", {x1: X(f.t), x2: X(f.t), y1: MT, y2: H - MB, stroke: "#555", "stroke-width": 1.5}, svg);
  }
  svg.addEventListener("wheel", ev => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const px = (ev.clientX - r.left) / r.width * W;
    const t = x0 + (px - ML) / (W - ML - MR) * (x1 - x0);
    zoom(ev.deltaY < 0 ? 0.8 : 1.25, t);
  }, {passive: false});
  svg.addEventListener("mousedown", ev => { drag = ev.clientX; ev.preventDefault(); });
  svg.addEventListener("mousemove", ev => {
    if (drag === null) return;
    const r = svg.getBoundingClientRect();
    const dt = (drag - ev.clientX) / r.width * W / (W - ML - MR) * (xdom[1] - xdom[0]);
    drag = ev.clientX;
    xdom = [xdom[0] + dt, xdom[1] + dt];
    drawCharts();
  });
}
function zoom(f, around) {
  const [a, b] = xdom;
  const c = around === undefined ? (a + b) / 2 : around;
  xdom = [c - (c - a) * f, c + (b - c) * f];
  drawCharts();
}
function drawCharts() {
  const s = R().series;
  if (!xdom) xdom = fullDomain();
  const kb = v => v >= 1e6 ? (v / 1e6).toFixed(1) + " MB" : v >= 1e3 ? (v / 1e3).toFixed(0) + " kB" : Math.round(v) + " B";
  const segColor = p => p[5] === "lost" ? "#c62828" : p[3] ? "#ff6f00" : "#1f5fbf";
  chart("chart-tseq", `Time-sequence graph of ${s.conn || "the first TCP connection"} (sender ${s.sender || "?"}): data sent, ACKs and window`, "sequence number (bytes)", [
    {name: "data segment", kind: "bars", color: "#1f5fbf", colorOf: segColor, data: s.segments.filter(p => !p[3] && p[5] !== "lost"), y2: 2},
    {name: "retransmission", kind: "bars", color: "#ff6f00", colorOf: segColor, data: s.segments.filter(p => p[3] && p[5] !== "lost"), y2: 2, width: 3},
    {name: "lost on the wire", kind: "bars", color: "#c62828", colorOf: segColor, data: s.segments.filter(p => p[5] === "lost"), y2: 2, width: 3},
    {name: "cumulative ACK", kind: "step", color: "#2e7d32", data: s.acks},
    {name: "receive window edge", kind: "step", color: "#9e9d24", dash: "5,3", data: s.acks.map(p => [p[0], p[2]])},
    {name: "SACK block", kind: "bars", color: "#8e24aa", data: s.sacks, y2: 2, width: 4},
  ], kb);
  chart("chart-cwnd", "Congestion window (cwnd) and slow-start threshold (ssthresh) of the sender", "bytes", [
    {name: "cwnd", kind: "step", color: "#1565c0", data: s.cwnd},
    {name: "ssthresh", kind: "step", color: "#c62828", dash: "6,3", data: s.ssthresh},
  ], kb);
  const backoff = s.rto.filter(p => p[2] > 0);
  chart("chart-rtt", "Round-trip time: samples, smoothed RTT and the retransmission timeout (RTO, doubled at each timeout)", "milliseconds (ms)", [
    {name: "RTT sample", kind: "points", color: "#616161", data: s.rtt},
    {name: "SRTT", kind: "step", color: "#1565c0", data: s.srtt},
    {name: "RTO", kind: "step", color: "#c62828", dash: "6,3", data: s.rto},
    {name: "RTO after backoff", kind: "points", color: "#b71c1c", data: backoff},
  ], v => v.toFixed(0));
  chart("chart-queue", "Bottleneck queue: frames waiting at the sender's link transmitter", "frames waiting", [
    {name: "queue occupancy", kind: "step", color: "#6d4c41", data: s.queue},
  ], v => v.toFixed(0));
}

function showRun(i) {
  run = i; sel = null; xdom = null;
  document.querySelectorAll(".tab").forEach(b => b.classList.toggle("active", +b.dataset.run === i));
  document.querySelectorAll(".ladder-wrap").forEach(d => d.style.display = +d.dataset.run === i ? "block" : "none");
  document.getElementById("frame-info").innerHTML = '<p class="help">No frame selected yet.</p>';
  document.getElementById("position").textContent = "";
  showSummary();
  drawCharts();
}
document.querySelectorAll(".tab").forEach(b => b.addEventListener("click", () => showRun(+b.dataset.run)));
document.querySelectorAll("g.frame").forEach(g => g.addEventListener("click", () => select(+g.dataset.id, false)));
const cmp = document.getElementById("compare");
if (cmp) cmp.addEventListener("change", () => document.getElementById("ladder").classList.toggle("compare", cmp.checked));
document.getElementById("prev").addEventListener("click", () => step(-1));
document.getElementById("next").addEventListener("click", () => step(1));
document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5));
document.getElementById("zoom-out").addEventListener("click", () => zoom(2));
document.getElementById("zoom-reset").addEventListener("click", () => { xdom = null; drawCharts(); });
document.addEventListener("keydown", ev => {
  if (ev.key === "ArrowRight" || ev.key === "ArrowDown") { step(1); ev.preventDefault(); }
  if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") { step(-1); ev.preventDefault(); }
});
showRun(0);
</script>
</body></html>
"""
