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

    from .common import host_name, output_file, png_path
    add("--pcap", metavar="FILE", default=None, type=output_file,
        help="capture to FILE: *.pcapng gets the wire's decision as each packet's comment, "
             "other names classic pcap, '-' streams pcapng to stdout")
    add("--pcap-at", metavar="HOST", default=None, type=host_name,
        help="capture at HOST's NIC (what that host sent and received) instead of on the wire")
    add("--ladder", metavar="FILE", default=None, type=output_file,
        help="ladder diagram of the run: '-' prints it, FILE.svg draws it, other names get the text")
    add("--html", metavar="FILE", default=None, type=output_file,
        help="write the run viewer: one self-contained HTML file (ladder, graphs, per-frame reasons)")
    add("--plot", metavar="FILE.png", default=None, type=png_path, help="plot the TCP connection (time-sequence, cwnd, RTT)")
    add("--json", action="store_true", help="print one JSON object with the figures")
    if p.prog.split()[-1] == "demo":
        w = p.add_argument_group("what if: run again with one change, compare the two runs")
        w.add_argument("--kill", type=_frame_number, metavar="N", default=None,
                       help="drop frame N (the decision log's numbering: #N in captures and ladders)")
        w.add_argument("--corrupt-frame", type=_frame_number, metavar="N", default=None,
                       help="flip one bit of frame N")
        w.add_argument("--delay-frame", type=_frame_delay, metavar="N:MS", default=None,
                       help="hold frame N back MS milliseconds")
        w.add_argument("--what-if", metavar="KEY=VALUE", action="append", default=[], type=_key_value,
                       help="change one setting: a demo option (loss=0.05, delay_ms=50, rate_mbps=1) "
                            "or a TCP socket option (sack=off, nodelay=on, congestion_control=none)")
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
    what_if = any(getattr(args, k, None) for k in ("kill", "corrupt_frame", "delay_frame", "what_if"))
    if what_if:
        try:
            what_if_change(args)
        except ValueError as exc:
            parser.error(str(exc))
    view = View(pcap_at=args.pcap_at, record=bool(args.ladder or args.html or what_if))
    if is_lab:
        if args.name is None:
            _list_labs()
            return 0
        if args.name not in _lab_names():
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
    # With the demo's --json, stdout is one JSON object: everything else goes to stderr.
    with redirect_stdout(sys.stderr if (args.json and not is_lab) else out):
        if what_if:
            run_what_if(args, view)
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
    if hasattr(result, "rtos"):
        out["RTOs"] = result.rtos
    elif counters:
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


def _key_value(text: str) -> str:
    """--what-if's type: KEY=VALUE; which keys exist is checked before the first run."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. loss=0.05), not {text!r}")
    return text


def _frame_number(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a frame number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("frame numbers start at 1")
    return n


def _frame_delay(text: str) -> tuple[int, float]:
    n, sep, ms = text.partition(":")
    try:
        value = (_frame_number(n), float(ms))
    except ValueError:
        value = None
    if not sep or value is None or value[1] < 0:
        raise argparse.ArgumentTypeError(f"expected N:MS (frame number, milliseconds), not {text!r}")
    return value


def _parse_value(text: str):
    low = text.lower()
    if low in ("on", "true", "yes"):
        return True
    if low in ("off", "false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def what_if_change(args) -> tuple[list, dict, str]:
    """The one change asked for: (sim Faults for the link, DemoOptions changes, words)."""
    from ..sim import Fault
    from ..units import MS
    faults, change, words = [], {}, []
    if args.kill is not None:
        faults.append(Fault("drop", frame=args.kill, name=f"kill #{args.kill}"))
        words.append(f"frame #{args.kill} is lost")
    if args.corrupt_frame is not None:
        faults.append(Fault("corrupt", frame=args.corrupt_frame, name=f"corrupt #{args.corrupt_frame}"))
        words.append(f"one bit of frame #{args.corrupt_frame} is flipped")
    if args.delay_frame is not None:
        n, ms = args.delay_frame
        faults.append(Fault("delay", frame=n, delay=int(round(ms * MS)), name=f"delay #{n} +{ms:g} ms"))
        words.append(f"frame #{n} is held back {ms:g} ms")
    from ..labs.demo import DemoOptions
    fields = DemoOptions.__dataclass_fields__
    tcp = {}
    for item in args.what_if:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--what-if: expected KEY=VALUE, not {item!r}")
        v = _parse_value(value.strip())
        if key in fields and key not in ("tcp_options", "pcap", "plot", "decisions_path", "events_path"):
            change[key] = v
        else:
            tcp[key] = v
        words.append(f"{key}={value.strip()}")
    if tcp:
        change["tcp_options"] = tcp
    return faults, change, ", ".join(words)


def first_difference(a: dict, b: dict) -> str:
    """The first frame (by decision-log number) that differs between two recorded runs."""
    fa = {f["id"]: f for f in a["frames"]}
    fb = {f["id"]: f for f in b["frames"]}
    for fid in sorted(set(fa) | set(fb)):
        x, y = fa.get(fid), fb.get(fid)
        key = lambda f: (f["t"], f["src"], f["summary"], f["fate"], f["reason"])  # noqa: E731
        if x is None or y is None or key(x) != key(y):
            def say(f):
                if f is None:
                    return "not sent"
                fate = f["reason"] if f["fate"] == "lost" else f["fate"] + (f": {f['reason']}" if f["reason"] else "")
                return f"{f['src']} → {f['dst']} at {f['t'] / 1e9:.6f} s, {f['label']}, {fate}"
            return f"#{fid}\n    as it ran:        {say(x)}\n    with the change:  {say(y)}"
    return "none: the two runs put the same frames on the wire"


def run_what_if(args, view) -> None:
    from ..labs.observe import View, viewing
    base = next((o for o in view.runs if o.rerun is not None), None)
    if base is None:
        return
    faults, change, words = what_if_change(args)
    alt = View(record=True, faults=faults)
    with viewing(alt), redirect_stdout(io.StringIO()):
        base.rerun(**change)
    other = alt.runs[0]
    base.label = base.label if base.label not in ("", "demo", "run") else "as it ran"
    other.label = "what if " + words
    view.runs.append(other)
    if base.data is None or other.data is None:
        return
    ra, rb = summary_of(base.result), summary_of(other.result)
    rows = [("", "as it ran", "with the change")]
    for key in ("transfer time", "goodput", "retransmissions", "RTOs"):
        rows.append((key, str(ra.get(key, "-")), str(rb.get(key, "-"))))
    def on_wire(data):
        return str(sum(1 for f in data["frames"] if "dup_of" not in f))
    rows.append(("frames on the wire", on_wire(base.data), on_wire(other.data)))
    rows.append(("sha256", "ok" if getattr(base.result, "sha256_ok", False) else "MISMATCH",
                 "ok" if getattr(other.result, "sha256_ok", False) else "MISMATCH"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    print(f"== what if {words}? The same seed again, with that one change:")
    for r in rows:
        print("  " + r[0].ljust(widths[0]) + "  " + r[1].rjust(widths[1]) + "  " + r[2].rjust(widths[2]))
    print("  first frame that differs: " + first_difference(base.data, other.data))


def _list_labs() -> None:
    from ..labs.experiments import LABS
    print("labs (run one with: wirestack lab NAME [--seed S] [--html F] [--pcap F] [--ladder F] [--plot F] "
          "[--json]):")
    for lab in LABS.values():
        print(f"  {lab.name:<18} {lab.title}")
        print(f"  {'':<18} {lab.question}")


def _lab_names():
    from ..labs.experiments import LABS
    return LABS


def _print_lab_json(args, view, text: str) -> None:
    import dataclasses
    import json
    runs = []
    for obs in view.runs:
        r = obs.result
        d = dataclasses.asdict(r) if dataclasses.is_dataclass(r) and not isinstance(r, type) else {}
        d.pop("progress", None)
        if hasattr(r, "goodput_bps"):
            d["goodput_bps"] = r.goodput_bps
        runs.append({"label": obs.label, "files": obs.files, **d})
    print(json.dumps({"lab": args.name, "seed": args.seed, "runs": runs, "report": text}, sort_keys=True,
                     default=str))

