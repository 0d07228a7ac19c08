"""Watching runs: what `--pcap`, `--pcap-at`, `--ladder`, `--html`, `--plot` and the what-if
options ask of the networks a command builds.

A command sets a :class:`View` for the duration of a run (``with viewing(View(...)):``);
every network built by the demo, a lab or a measured transfer calls :func:`attach` right
after its wiring and :func:`finish` at the end, so one set of options reaches every run
without threading them through each lab's signature. Outside ``viewing`` both are no-ops.

A lab that builds its own network follows the same two calls::

    obs = observe.attach(net, link)        # after the hosts and media exist
    ...                                    # run
    observe.finish(obs, result)            # before net.close()
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Observed:
    """One run seen under a View."""
    index: int
    label: str = ""
    recorder: Any = None
    data: dict | None = None        # RunRecorder.data() once the run finished
    result: Any = None
    rerun: Callable[[], Any] | None = None
    files: list = field(default_factory=list)
    plotter: Any = None
    plot_path: str | None = None


@dataclass
class View:
    pcap: str | None = None          # a capture per run (labs; the demo has its own --pcap)
    pcap_at: str | None = None       # capture at this host's NIC(s) instead of the medium
    record: bool = False             # keep a RunRecorder per run (ladder, html)
    plot: str | None = None          # a PNG per run (labs)
    faults: list = field(default_factory=list)   # sim Faults added to the observed link
    runs: list[Observed] = field(default_factory=list)


_VIEW: ContextVar[View | None] = ContextVar("wirestack_view", default=None)


@contextmanager
def viewing(view: View):
    token = _VIEW.set(view)
    try:
        yield view
    finally:
        _VIEW.reset(token)


def current() -> View | None:
    return _VIEW.get()


def numbered(path: str, index: int) -> str:
    """"run.pcapng", 2 -> "run-2.pcapng" (one file per run of a lab)."""
    if path == "-":
        return path
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-{index}.{ext}" if dot and "/" not in ext else f"{path}-{index}"


def capture_point(net, default):
    """Where a run's capture goes: the medium ``default``, or the host named by --pcap-at."""
    v = current()
    if v is None or not v.pcap_at:
        return default
    if v.pcap_at not in net.hosts:
        raise ValueError(f"--pcap-at: no host {v.pcap_at!r} (hosts: {', '.join(net.hosts)})")
    return net.hosts[v.pcap_at]


def attach(net, link=None, title: str = "run", own_capture: bool = False,
           ends: tuple[Any, Any] | None = None) -> Observed | None:
    """Apply the current View to a freshly wired network: what-if faults on ``link``, a run
    recorder, a capture and a plot recorder (unless the caller captures itself). The plot
    follows the first TCP connection from ``ends[0]`` to ``ends[1]`` (default: hosts a, b)."""
    v = current()
    if v is None:
        return None
    obs = Observed(index=len(v.runs) + 1, label=title)
    v.runs.append(obs)
    if v.faults and link is not None:
        for f in v.faults:
            link.add_fault(dataclasses.replace(f))   # a fresh copy: its own match counts
    if v.record:
        from ..trace.record import RunRecorder
        obs.recorder = RunRecorder(net, title=title)
    if v.pcap and not own_capture:
        path = numbered(v.pcap, obs.index)
        net.capture(path, capture_point(net, link if link is not None else None))
        obs.files.append(path)
    if ends is None and "a" in net.hosts and "b" in net.hosts:
        ends = (net.hosts["a"], net.hosts["b"])
    if v.plot and ends is not None:
        from ..trace.plot import ConnectionRecorder
        obs.plotter = ConnectionRecorder(net, link, *ends)
        obs.plot_path = numbered(v.plot, obs.index)
    return obs


def finish(obs: Observed | None, result: Any = None, rerun: Callable[[], Any] | None = None) -> None:
    """The run is over (call before ``net.close()``): keep its record and result."""
    if obs is None:
        return
    obs.result = result
    obs.rerun = rerun
    if obs.recorder is not None:
        obs.data = obs.recorder.data()
        obs.recorder = None
    if obs.plotter is not None and obs.plotter.key is not None:
        obs.plotter.plot(obs.plot_path)
        obs.files.append(obs.plot_path)
    obs.plotter = None


def label_runs(runs: list[tuple[str, Any]]) -> None:
    """Give the observed runs the labels a lab gave its results (matched by identity)."""
    v = current()
    if v is None:
        return
    for label, result in runs:
        for obs in v.runs:
            if obs.result is result:
                obs.label = label
                if obs.data is not None:
                    obs.data["title"] = label
