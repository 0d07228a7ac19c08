"""Options that let a learner see a run: captures (`--pcap`, `--pcap-at`), ladder diagrams,
the run viewer, and what-if re-runs. Shared by `demo` and `lab`.

``add_view_options(parser)`` is called once at the end of a subcommand's ``register()``
(after ``set_defaults(run=...)``): it adds the options the parser does not have yet and
wraps the command, which then runs under a :class:`~wirestack.labs.observe.View`.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from contextlib import redirect_stdout


def add_view_options(p: argparse.ArgumentParser) -> None:
    have = p._option_string_actions
    g = p.add_argument_group("seeing the run")

    def add(flag, **kw):
        if flag not in have:
            g.add_argument(flag, **kw)

    add("--pcap", metavar="FILE", default=None,
        help="capture to FILE: *.pcapng gets the wire's decision as each packet's comment, "
             "other names classic pcap, '-' streams pcapng to stdout")
    add("--pcap-at", metavar="HOST", default=None,
        help="capture at HOST's NIC (what that host sent and received) instead of on the wire")
    add("--ladder", metavar="FILE", default=None,
        help="ladder diagram of the run: '-' prints it, FILE.svg draws it, other names get the text")
    add("--html", metavar="FILE", default=None,
        help="write the run viewer: one self-contained HTML file (ladder, graphs, per-frame reasons)")
    add("--plot", metavar="FILE.png", default=None, help="plot the TCP connection (time-sequence, cwnd, RTT)")
    add("--json", action="store_true", help="print one JSON object with the figures")
    inner = p.get_default("run")
    p.set_defaults(run=functools.partial(run_with_view, inner))


class _TextToStderr:
    """sys.stdout while pcapng streams to the real stdout: text goes to stderr, ``buffer``
    is the real stdout's, so the capture and the report do not mix."""

    def __init__(self, real):
        self.buffer = real.buffer

    def write(self, s):
        return sys.stderr.write(s)

    def flush(self):
        sys.stderr.flush()
        self.buffer.flush()


def run_with_view(inner, args, parser) -> int:
    from ..labs.observe import View, viewing
    is_lab = getattr(args, "command", "") == "lab"
    view = View(pcap_at=args.pcap_at, record=bool(args.ladder or args.html))
    if is_lab:
        if args.name is None or args.name not in _lab_names():
            return inner(args, parser)
        view.pcap = args.pcap
        view.plot = args.plot
    out = sys.stdout
    if args.pcap == "-":
        out = _TextToStderr(sys.stdout)
    text = io.StringIO()
    with viewing(view), redirect_stdout(text if (is_lab and args.json) else out):
        try:
            status = inner(args, parser)
        except ValueError as exc:
            if "--pcap-at" not in str(exc):
                raise
            parser.error(str(exc))
    with redirect_stdout(out):
        if args.ladder:
            _write_ladders(args.ladder, view)
        if args.html:
            _write_html(args, view)
        if is_lab and args.json:
            _print_lab_json(args, view, text.getvalue())
        elif is_lab and view.runs and any(o.files for o in view.runs):
            print("\nfiles: " + ", ".join(f for o in view.runs for f in o.files))
    return status


def _write_ladders(target: str, view) -> None:
    from ..labs.observe import numbered
    from ..trace.ladder import svg_ladder, text_ladder
    runs = [o for o in view.runs if o.data is not None]
    for obs in runs:
        if target == "-":
            print()
            print(text_ladder(obs.data), end="")
            continue
        path = target if len(runs) == 1 else numbered(target, obs.index)
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg_ladder(obs.data) if path.endswith(".svg") else text_ladder(obs.data))
        obs.files.append(path)
        print(f"ladder of {obs.label or 'the run'} written to {path}")


def summary_of(result) -> dict:
    """The figures of a demo or transfer result shown above the ladder."""
    out = {}
    secs = getattr(result, "transfer_seconds", None) or getattr(result, "virtual_seconds", None)
    if secs:
        out["transfer time"] = f"{secs:.3f} s"
    if hasattr(result, "goodput_mbps"):
        out["goodput"] = f"{result.goodput_mbps:.2f} Mbit/s"
    elif hasattr(result, "goodput_bps"):
        out["goodput"] = f"{result.goodput_bps / 1e6:.2f} Mbit/s"
    stats = getattr(result, "tcp_stats", None) or getattr(result, "sender", None) or {}
    if stats:
        out["retransmissions"] = stats.get("retransmits", 0)
    counters = getattr(result, "counters", {}) or {}
    out["RTOs"] = counters.get("a", {}).get("tcp.rto_timeouts", 0)
    return out


def _write_html(args, view) -> None:
    from ..trace import viewer
    runs = []
    for obs in view.runs:
        if obs.data is None:
            continue
        obs.data["summary"] = summary_of(obs.result)
        if obs.label:
            obs.data["title"] = obs.label
        runs.append(obs.data)
    if not runs:
        return
    title = f"wirestack {args.command}" + (f" {args.name}" if getattr(args, "name", None) else "") + \
        f" (seed {args.seed})"
    viewer.write(args.html, runs, title)
    print(f"run viewer written to {args.html} (open it in a browser; it needs no network)")


def _lab_names():
    from ..labs.experiments import LABS
    return LABS


def _print_lab_json(args, view, text: str) -> None:
    import dataclasses
    import json
    runs = []
    for obs in view.runs:
        r = obs.result
        d = dataclasses.asdict(r) if dataclasses.is_dataclass(r) else {}
        d.pop("progress", None)
        if hasattr(r, "goodput_bps"):
            d["goodput_bps"] = r.goodput_bps
        runs.append({"label": obs.label, "files": obs.files, **d})
    print(json.dumps({"lab": args.name, "seed": args.seed, "runs": runs, "report": text}, sort_keys=True,
                     default=str))

